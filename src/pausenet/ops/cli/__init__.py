"""The `pausenet` command line. Errors reach the user as one red line and exit code 2.

    app.py      the typer app, global options, consoles, `main` and the shared runner
    offline.py  keygen, charter show, federation init, tls init, verify, demo
    charters.py charter sign, status, diff (approving and comparing charter versions)
    run.py      pausenet run
    admin.py    finding a node's admin API; vote, attest, stats
    query.py    status, log, view

Importing this package registers every command on `app.app`, in the order `--help` lists them.
"""

from __future__ import annotations

import importlib

from pausenet.ops.cli.app import cli_main, main, run_app

__all__ = ["cli_main", "main", "run_app"]

# Each module adds its commands to the app as it is imported, so the order here is the order
# of `pausenet --help` (an import statement would be re-sorted by the linter).
for _module in ("offline", "charters", "run", "admin", "query"):
    importlib.import_module(f"pausenet.ops.cli.{_module}")
