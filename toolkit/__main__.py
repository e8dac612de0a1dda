"""`python -m embbert` is the `embbert` command."""

from .cli import main

main()
