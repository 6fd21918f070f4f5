"""A dbt process started ahead of its command (``pipeline.dbt.prestart``, docs/decisions.md 90).

Run as a script (``python -P pipeline/dbt_warm.py``: not as part of the ``pipeline`` package,
which it does not need, and with its folder off ``sys.path``, where pipeline/dbt.py would hide
the dbt package). It imports dbt and the DuckDB adapter (about 2.3 s of CPU) while the run it
belongs to does other work on the other core, then waits for one line on stdin: a JSON object
with ``argv`` (dbt's arguments), ``cwd`` and ``env``. It takes that environment and folder and
runs dbt's own command-line entry point with those arguments, exactly as the ``dbt`` executable
would, and exits with dbt's status. End of input without a line (the run needed no dbt, or
ended first): it exits 0 having run nothing.
"""
import json
import os
import sys

from dbt.cli.main import cli  # noqa: E402 - the import this process is started ahead for
import dbt.adapters.duckdb  # noqa: F401 - the adapter's plugin, registered at dbt's start

line = sys.stdin.readline()
if not line.strip():
    sys.exit(0)
request = json.loads(line)
os.environ.clear()
os.environ.update(request["env"])
os.chdir(request["cwd"])
sys.argv = ["dbt", *request["argv"]]
sys.exit(cli())
