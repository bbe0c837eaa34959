"""`python -m ainfluencer` runs the CLI."""

from ainfluencer.cli import main

main()
