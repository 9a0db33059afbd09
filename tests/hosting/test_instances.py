"""What a dead instance's FailureReason quotes from its output."""

from __future__ import annotations

from kamado.hosting.instances import last_line


def test_quotes_the_exception_even_when_the_server_logged_more_after_it() -> None:
    out = (
        "kamado model server: loading\nTraceback (most recent call last):\n  File 'x.py', line 3\n"
        "RuntimeError: this model cannot load\nkamado model server: loading the model failed; not serving.\n"
    )
    assert last_line(out) == "RuntimeError: this model cannot load"


def test_falls_back_to_the_last_line_and_to_nothing() -> None:
    assert last_line("starting\nKilled\n") == "Killed"
    assert last_line("\n \n") == ""
    assert (
        last_line("ModuleNotFoundError: No module named 'xgboost'") == "ModuleNotFoundError: No module named 'xgboost'"
    )
