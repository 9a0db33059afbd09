"""Python functions (the Lambda analogue) and fan-out map runs over them."""
