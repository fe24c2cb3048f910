"""`python -m pausenet` runs the command-line interface."""

from pausenet.ops.cli import main

main()
