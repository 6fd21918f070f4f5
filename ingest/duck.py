"""Every DuckDB connection the project opens: one place that bounds its memory.

``connect`` opens a connection as ``duckdb.connect`` does and sets, on the database instance,
``memory_limit`` (``WH_DUCKDB_MEMORY_LIMIT``, default 4 % of this machine's memory, at least
512 MiB) and ``temp_directory`` (a folder of its own under ``WH_DUCKDB_TEMP_DIR``), read-only
connections included. Past the limit DuckDB spills what it can (sorts, joins, aggregates) to
that folder instead of growing; what cannot spill fails with DuckDB's out-of-memory error rather
than taking the machine's memory.

The settings are applied with ``SET`` after connecting, not as ``config=`` of the connect:
DuckDB refuses a second connection to a file already open in the process "with a different
configuration", and ``SET`` changes the one instance every connection to that file shares.

Each database instance gets its own spill folder, ``<WH_DUCKDB_TEMP_DIR>/duck-<pid>/<n>``:
two DuckDB instances spilling into one folder at the same time crash the process (measured,
DuckDB 1.5.5: a segmentation fault), and DuckDB's own default (``.tmp`` in the working
directory for an in-memory database) is such a shared folder. DuckDB removes the folder when
the instance closes; the ``duck-<pid>`` folders of processes that died are removed by the next
``connect`` (``ingest.dead_folders``: the pid is gone on this host).

dbt opens its own connection from ``dbt_project/profiles.yml``, whose ``settings:`` read
``WH_DBT_DUCKDB_MEMORY_LIMIT`` and ``WH_DBT_DUCKDB_TEMP_DIR`` (``dbt_settings``, written into
dbt's environment by ``pipeline.dbt.dbt_env``). ``tests/test_duck.py`` fails on any other
``duckdb.connect(`` in ingest/, pipeline/, expectations/ and dags/.
"""
from __future__ import annotations

import itertools
import logging
import os
import threading
from pathlib import Path

import duckdb

from ingest import dead_folders
from ingest.config import MB, settings

log = logging.getLogger(__name__)

PREFIX = "duck-"
_counter = itertools.count(1)
_reaped: set[Path] = set()
_lock = threading.Lock()


def memory_limit_text(limit_bytes: int) -> str:
    """A byte count as DuckDB's memory_limit reads it (whole MiB)."""
    return f"{max(limit_bytes // MB, 1)}MiB"


def _process_folder(root: Path) -> Path:
    folder = root / f"{PREFIX}{os.getpid()}"
    with _lock:
        if root not in _reaped:
            _reaped.add(root)
            dead_folders.reap_dead(root, PREFIX)
    return folder


def temp_dir_for(name: str) -> Path:
    """A spill folder of this process for one DuckDB instance (``name`` distinguishes it)."""
    return _process_folder(settings().duckdb_temp_dir) / name


def _sql(text: str) -> str:
    return text.replace("'", "''")


def connect(database: str | os.PathLike = ":memory:", read_only: bool = False,
            config: dict | None = None) -> duckdb.DuckDBPyConnection:
    """``duckdb.connect(database, read_only, config)`` with the memory limit and a spill folder
    of its own applied to the database instance (see the module's docstring). A file already
    open in this process shares its instance, and keeps the spill folder it has."""
    s = settings()
    con = duckdb.connect(str(database), read_only=read_only, config=config or {})
    try:
        con.execute(f"set memory_limit = '{memory_limit_text(s.duckdb_memory_limit)}'")
        root = s.duckdb_temp_dir
        current = con.execute("select current_setting('temp_directory')").fetchone()[0] or ""
        if not current.startswith(str(root)):
            folder = temp_dir_for(str(next(_counter)))
            folder.parent.mkdir(parents=True, exist_ok=True)
            try:
                con.execute(f"set temp_directory = '{_sql(str(folder))}'")
            except duckdb.Error as err:  # a file opened elsewhere in the process has spilled
                log.info("DuckDB temp_directory of %s left at %s: %s", database, current, err)
    except BaseException:
        con.close()
        raise
    return con


INSERT_CHUNK = 500
"""Rows per INSERT statement of ``insert_rows``."""


def insert_rows(con: duckdb.DuckDBPyConnection, table: str, rows: list[tuple] | list[list]) -> None:
    """Insert ``rows`` (tuples in the table's column order) into ``table``, a few hundred per
    statement: DuckDB's ``executemany`` runs one INSERT per row (measured: 500 rows of six
    columns in 0.47 s, against 0.02 s as one multi-row VALUES statement, decision 88)."""
    if not rows:
        return
    width = len(rows[0])
    one = f"({', '.join('?' * width)})"
    for start in range(0, len(rows), INSERT_CHUNK):
        chunk = rows[start:start + INSERT_CHUNK]
        con.execute(f"insert into {table} values {', '.join([one] * len(chunk))}",
                    [value for row in chunk for value in row])


_shared: tuple[tuple, duckdb.DuckDBPyConnection] | None = None
_shared_lock = threading.Lock()


def shared_cursor() -> duckdb.DuckDBPyConnection:
    """A connection (``cursor()``) to this process's shared in-memory DuckDB instance, opened
    by ``connect`` (the memory limit, a spill folder of its own), for the parsers' queries
    over files that need no database of their own; close it when done. Opening an instance
    costs about 10 ms and its first query a few more, and a parser runs once per file: seven
    small CSV files of one source took 0.33 s with an instance each and 0.17 s sharing one
    (decision 77). The instance lives as long as the process; a forked child, or settings
    changed since (tests), get a new one. A setting made with ``SET`` on a cursor
    (``threads``) is the instance's: set what a query needs before it."""
    global _shared
    s = settings()
    key = (os.getpid(), s.duckdb_memory_limit, str(s.duckdb_temp_dir))
    with _shared_lock:
        if _shared is None or _shared[0] != key:
            if _shared is not None and _shared[0][0] == os.getpid():
                _shared[1].close()
            _shared = (key, connect(config={"preserve_insertion_order": True}))
        return _shared[1].cursor()


SPILL_LINK = ".duckdb-spill"
"""In the folder dbt runs in: a link to the dbt process's spill folder, so that the profile's
``temp_directory`` is the same relative name in every run (dbt parses the whole project again
whenever its profile changes: 2.6 s at every run when the profile named the folder itself)."""


def dbt_settings(env: dict[str, str], cwd: Path | None = None) -> dict[str, str]:
    """The variables dbt's profile reads for its ``settings:`` (one folder per dbt process).
    With ``cwd`` (where dbt will run) the profile gets ``SPILL_LINK``, a link there to that
    folder, rather than the folder's own path, which names this process."""
    s = settings()
    folder = temp_dir_for(f"dbt-{next(_counter)}")
    folder.parent.mkdir(parents=True, exist_ok=True)
    env["WH_DBT_DUCKDB_MEMORY_LIMIT"] = memory_limit_text(s.duckdb_memory_limit)
    env["WH_DBT_DUCKDB_TEMP_DIR"] = str(folder)
    if cwd is not None:
        # DuckDB creates a missing spill folder but not through a link: made here, it stays
        # after dbt (DuckDB removes only folders it made) and goes with this process's folder.
        folder.mkdir(parents=True, exist_ok=True)
        link = Path(cwd) / SPILL_LINK
        staged = link.with_name(f"{SPILL_LINK}.{os.getpid()}.tmp")
        staged.unlink(missing_ok=True)
        staged.symlink_to(folder, target_is_directory=True)
        os.replace(staged, link)
        env["WH_DBT_DUCKDB_TEMP_DIR"] = SPILL_LINK
    return env
