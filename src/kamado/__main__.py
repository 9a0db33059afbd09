from kamado.cli.main import app

app(prog_name="kamado")
