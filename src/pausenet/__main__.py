"""`python -m pausenet` runs the command-line interface."""

from pausenet.cli import main

main()
