"""`python -m generate` runs the command line, as the `generate` script does."""

from .cli import main

main()
