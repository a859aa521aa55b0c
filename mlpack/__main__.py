"""``python -m mlpack``."""

from .cli import run

run()
