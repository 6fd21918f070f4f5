"""A DuckDB fast path for the format the live Eurostat API sends: SDMX-CSV 1.0 with codes.

``parse_sdmx_codes`` reads such a file with DuckDB's own CSV reader (``read_csv`` with explicit
VARCHAR columns, strict: every line as wide as the header; a file of ``TABLE_BYTES`` or more
once, on every thread, into a temporary table whose ``rowid`` + 1 is the line number, since a
scan of one table keeps insertion order) and checks in SQL every rule
``ingest.sources.eurostat.formats.parse_observations`` checks for this format; the rows are
then written to Parquet by DuckDB (``FastRows.write_parquet``), never held in Python, so a file
of tens of millions of observations parses in memory bounded by DuckDB's limit (a table spills
past it).

It is an optimisation, never a second dialect: its rows are those ``parse_observations`` gives
(same values, types and ``source_row``), and it is used only where that can be exactly right.
For anything else it returns None and the caller parses with ``parse_observations``, which
raises its own error naming file, row and rule, so errors are what they were:

- text that is not plain ASCII (a UTF-8 BOM is dropped as the Python reader drops it), a NUL
  byte, a double quote anywhere (so no quoted field and no quoted newline: a line is a row),
  lone or mixed carriage returns;
- a header that is not exactly ``DATAFLOW,LAST UPDATE,<dimensions incl. freq>,TIME_PERIOD,
  OBS_VALUE[,OBS_FLAG][,CONF_STATUS]`` (labels instead of codes show in the rows: their freq is
  not a code);
- a blank line (DuckDB's row count then differs from the file's line count), a line of another
  width;
- any rule broken: freq not A/S/Q/M, TIME_PERIOD not of its freq, OBS_VALUE neither a finite
  number nor empty/``:``, an empty dimension code, a field with characters the Python reader
  would trim (or has to escape in ``dimensions``), several DATAFLOW or LAST UPDATE values, the
  dataset not named, not the one asked for or not known, no observations;
- a header line repeated (a query split on 413 arrives as several bodies, each with its header).
  The SQL already counts every line, headers included, and skips exact repeats as
  ``parse_observations`` does, so dropping that one condition in ``_checked`` would read split
  answers too; it is kept while callers (tests of the split answer) read those rows as a
  DataFrame;
- any DuckDB error.
"""
from __future__ import annotations

import itertools
import logging
import os
import re
import tempfile
import weakref
from datetime import datetime
from pathlib import Path

import duckdb

from ingest import duck
from ingest.sources.eurostat import codes as eurostat_codes
from ingest.errors import DataError
from ingest.sources.eurostat.formats import (
    OWN_COLUMNS, SDMX_FIELDS, _dataflow_code, _dataset_from_name, parse_last_update,
)
from ingest.parsed import kv_sql
from ingest.source import Parsed

log = logging.getLogger(__name__)

SOURCE_FORMAT = "sdmx_csv"
BOM = b"\xef\xbb\xbf"
NON_ASCII = re.compile(rb"[^\x00-\x7f]")
DIMENSION_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
# Values the fast path takes as they are: no character Python's str.strip() would remove and none
# json.dumps would escape, and far below the csv module's field size limit. Anything else is
# left to the Python reader.
CODE_SQL = r"[A-Za-z0-9_.+\-]{1,100}"
FLAG_SQL = r"[A-Za-z0-9_.:+\-]{0,100}"
PERIOD_SQL = (r"A [0-9]{4}|S [0-9]{4}-S[12]|Q [0-9]{4}-Q[1-4]"
              r"|M [0-9]{4}-(0[1-9]|1[0-2])")
NUMBER_SQL = r"-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?"
MAX_STAMP = 1000
TABLE_BYTES = 16 * 2**20
"""A file of this size or more is read once, on every thread, into a temporary table whose
rowid gives the line numbers, then checked and written from it on every thread; a smaller one
is read twice from the CSV, streamed (the check, then the write with a ``row_number()``
window on one thread). Below it the table's extra statements cost more than the threads save:
the 1x benchmark's seven files, 0.28-0.32 CPU-seconds streamed, 0.34-0.41 as tables (decision
87)."""
_tables = itertools.count(1)


def parse_sdmx_codes(content: bytes, file_name: str, dataset: str | None = None) -> Parsed | None:
    """The parsed form of decompressed SDMX-CSV 1.0 with codes, read by DuckDB; None whenever the
    file is anything else or breaks any rule (then ``parse_observations`` reads it)."""
    layout = _layout(content)
    if layout is None:
        return None
    header, skip = layout
    path = None
    checked = None
    try:
        fd, name = tempfile.mkstemp(prefix="eurostat_fast_", suffix=".csv")
        path = Path(name)
        with os.fdopen(fd, "wb") as out:
            out.write(memoryview(content)[skip:])
        lines = content.count(b"\n", skip) + (0 if content.endswith(b"\n") else 1)
        checked = _checked(path, header, lines, file_name, dataset,
                           into_table=len(content) - skip >= TABLE_BYTES)
    except duckdb.Error as err:
        log.info("%s: DuckDB could not read it (%s): the Python reader will",
                 file_name, str(err).splitlines()[0])
    except OSError as err:  # the temporary file (disk full?): the Python reader needs none
        log.warning("%s: no temporary file for the DuckDB fast path (%s): the Python reader "
                    "will", file_name, err)
    finally:
        if path is not None and (checked is None or checked[0].csv_path is None):
            path.unlink(missing_ok=True)  # declined, or read into a table by then
    if checked is None:
        return None
    rows, last_update, code = checked
    return Parsed(last_update.date() if last_update else None, rows, code)


class FastRows:
    """Parsed observations held by DuckDB, on the connection that checked them:
    ``write_parquet`` runs the final SELECT into Parquet (``ingest.parsed.write``). Either the
    file's lines in a temporary table (``table``: one row per line, headers included, in file
    order, so that its ``rowid`` + 1 is the line number; written on every thread) or the
    temporary CSV file itself (``csv_path``: read again, streamed, the lines numbered by a
    ``row_number()`` window on one thread). The table is dropped, the file removed and the
    connection closed when this object is collected (or at ``close()``)."""

    def __init__(self, select_sql: str, count: int, con: duckdb.DuckDBPyConnection, *,
                 table: str | None = None, csv_path: Path | None = None) -> None:
        self.table = table
        self.csv_path = csv_path
        self._select = select_sql
        self._count = count
        self._con = con
        self._cleanup = weakref.finalize(self, _remove, con, table, csv_path)

    def __len__(self) -> int:
        return self._count

    def select_sql(self) -> str:
        """The SELECT giving the rows (OBSERVATION_COLUMNS, in file order)."""
        return self._select

    def _threads(self) -> None:
        # A table: every thread (a scan of one table keeps its order in the COPY). The CSV: one
        # thread, since row_number() over () streams in file order on one thread anyway, and
        # with more the ordered Parquet writer buffers what the scan reads ahead (GBs on 30M
        # rows).
        self._con.execute("reset threads" if self.table is not None else "set threads = 1")

    def write_parquet(self, path: Path, meta: dict[str, str]) -> None:
        self._threads()
        self._con.execute(f"copy ({self._select}) to '{_sql_str(str(path))}' "
                          f"(format parquet, compression zstd, kv_metadata {{{kv_sql(meta)}}})")

    def df(self):
        """The rows as a DataFrame (for small files and tests: it holds them all in memory)."""
        self._threads()
        return self._con.execute(self._select).df()

    def close(self) -> None:
        self._cleanup()


def _remove(con: duckdb.DuckDBPyConnection, table: str | None = None,
            path: Path | None = None) -> None:
    if table is not None:
        try:
            con.execute(f"drop table if exists {table}")
        except Exception:  # at interpreter exit, or the connection closed already: best effort
            pass
    try:
        con.close()
    except Exception:  # at interpreter exit, best effort
        pass
    if path is not None:
        try:
            path.unlink(missing_ok=True)
        except OSError:  # at interpreter exit, best effort
            pass


def _layout(content: bytes) -> tuple[list[str], int] | None:
    """The header of a file the fast path can read exactly, and the bytes to skip (a BOM);
    None for anything unusual. Cheap byte scans only."""
    skip = len(BOM) if content.startswith(BOM) else 0
    if not content.startswith(b"DATAFLOW,", skip):
        return None
    if (NON_ASCII.search(content, skip) is not None if skip else not content.isascii()):
        return None
    if b"\x00" in content or b'"' in content or b"<html" in content[:512].lower():
        return None
    returns = content.count(b"\r") if b"\r" in content else 0  # memchr first: most have none
    if returns and not (returns == content.count(b"\r\n") == content.count(b"\n")):
        return None
    end = content.find(b"\n", skip)
    first = content[skip:end if end >= 0 else len(content)].decode("ascii").rstrip("\r")
    header = first.split(",")
    if header[:2] != ["DATAFLOW", "LAST UPDATE"] or len(set(header)) != len(header):
        return None
    rest = header[2:]
    fields = [h for h in rest if h in SDMX_FIELDS]
    dims = [h for h in rest if h not in SDMX_FIELDS]
    if not {"TIME_PERIOD", "OBS_VALUE"} <= set(fields) or "freq" not in dims:
        return None
    if not all(DIMENSION_NAME.match(d) for d in dims):
        return None
    return header, skip


def _checked(path: Path, header: list[str], lines: int, file_name: str, dataset: str | None,
             into_table: bool) -> tuple[FastRows, datetime | None, str] | None:
    """One pass of DuckDB over the file: counts and every rule, in SQL; ``into_table``: over a
    temporary table the file is read into first (every thread; a line a row, in file order),
    else over the CSV file itself."""
    col = {h: f"c{i}" for i, h in enumerate(header)}
    dims = [h for h in header[2:] if h not in SDMX_FIELDS]
    source = (f"read_csv('{_sql_str(str(path))}', columns={{"
              + ", ".join(f"'c{i}': 'VARCHAR'" for i in range(len(header)))
              + "}, header=false, auto_detect=false, delim=',', quote='\"', escape='\"', "
              "strict_mode=true, null_padding=false, ignore_errors=false, encoding='utf-8')")
    is_header = " and ".join(f"{col[h]} is not distinct from '{_sql_str(h)}'" for h in header)
    optional = [col[f] for f in ("OBS_FLAG", "CONF_STATUS") if f in col]
    value = col["OBS_VALUE"]
    row_ok = " and ".join([
        f"regexp_full_match({col['freq']} || ' ' || {col['TIME_PERIOD']}, '{PERIOD_SQL}')",
        f"({value} is null or {value} = ':' or (length({value}) <= 100 "
        f"and regexp_full_match({value}, '{NUMBER_SQL}') "
        f"and isfinite(try_cast({value} as double))))",
        *(f"regexp_full_match({col[d]}, '{CODE_SQL}')" for d in dims),
        *(f"regexp_full_match(coalesce({c}, ''), '{FLAG_SQL}')" for c in optional),
    ])
    con = _connect()
    table = f"eurostat_lines_{next(_tables)}" if into_table else None
    kept = False
    try:
        con.execute("reset threads")  # a write on one thread set 1 on the shared instance
        if table is not None:
            # A temporary table of this cursor: a scan of one table keeps its insertion order,
            # so rowid + 1 is the line number (what a row_number() window gives, on one thread).
            con.execute(f"create temporary table {table} as select * from {source}")
            rows, line = table, "rowid + 1"
        else:
            rows, line = f"(select *, row_number() over () as line from {source})", "line"
        total, headers, broken, flows, flow, stamps, stamp = con.execute(f"""
            select count(*),
                   count(*) filter (where {is_header}),
                   count(*) filter (where not ({is_header}) and not coalesce({row_ok}, false)),
                   count(distinct coalesce(c0, '')) filter (where not ({is_header})),
                   min(coalesce(c0, '')) filter (where not ({is_header})),
                   count(distinct coalesce(c1, '')) filter (where not ({is_header})),
                   min(coalesce(c1, '')) filter (where not ({is_header}))
            from {table or source}""").fetchone()
        found = _verdict(total, headers, broken, flows, flow, stamps, stamp, lines, file_name,
                         dataset)
        if found is None:
            return None
        code, last_update = found
        select = _select(rows, line, col, dims, is_header, code, last_update)
        kept = True
        return (FastRows(select, total - headers, con, table=table,
                         csv_path=None if table is not None else path), last_update, code)
    finally:
        if not kept:
            _remove(con, table)


def _verdict(total: int, headers: int, broken: int, flows: int, flow: str, stamps: int,
             stamp: str, lines: int, file_name: str, dataset: str | None
             ) -> tuple[str, datetime | None] | None:
    """The dataset and update stamp when the counts say the fast path reads the file exactly,
    else None (logged)."""
    count = total - headers
    why = None
    if total != lines:
        why = f"{total:,} rows read where the file has {lines:,} lines (blank lines?)"
    elif headers < 1:
        # Split answers (413) repeat their header: the SQL counts every line (source_row stays
        # the line number) and leaves out every exact repeat of the header, as the Python reader.
        why = "no header line"
    elif broken:
        why = f"{broken:,} rows break a rule or hold values it does not take as they are"
    elif count == 0:
        why = "no observations"
    elif flows != 1 or stamps != 1:
        why = "several DATAFLOW or LAST UPDATE values"
    elif len(flow) > MAX_STAMP or len(stamp) > MAX_STAMP:
        why = "DATAFLOW or LAST UPDATE too long"
    if why is not None:
        log.info("%s: not read by the DuckDB fast path (%s): the Python reader will",
                 file_name, why)
        return None
    try:
        return _dataset(flow.strip(), stamp.strip(), file_name, dataset)
    except DataError as err:
        log.info("%s: not read by the DuckDB fast path (%s): the Python reader will",
                 file_name, err)
        return None


def _dataset(flow: str, stamp: str, file_name: str, dataset: str | None
             ) -> tuple[str, datetime | None]:
    """The dataset code and the update stamp, as ``parse_observations`` decides them (raises
    DataError where it would raise)."""
    last_update = parse_last_update(stamp, file_name, 2) if stamp else None
    named = _dataflow_code(flow or None, file_name) or _dataset_from_name(file_name)
    if named is None and dataset is None:
        raise DataError(file_name, "dataset named", "the file does not say which dataset it holds")
    if dataset is not None and named is not None and named != dataset:
        raise DataError(file_name, "dataset named",
                        f"asked for {dataset}, but the file holds {named}")
    code = dataset or named
    if code not in eurostat_codes.datasets():
        raise DataError(file_name, "known dataset", f"{code} is not a dataset this warehouse reads")
    return code, last_update


def _select(rows: str, line: str, col: dict[str, str], dims: list[str], is_header: str, code: str,
            last_update: datetime | None) -> str:
    others = sorted(d for d in dims if d not in OWN_COLUMNS)
    # json.dumps(dict(sorted(...)), ensure_ascii=False): the codes need no escaping (CODE_SQL).
    dimensions = "'{}'"
    if others:
        pieces = []
        for i, d in enumerate(others):
            before = "{" if i == 0 else '", '
            pieces += [f"'{before}\"{d}\": \"'", col[d]]
        dimensions = " || ".join(pieces) + " || '\"}'"
    value = col["OBS_VALUE"]
    stamp = (f"timestamp '{last_update.isoformat(sep=' ')}'" if last_update is not None
             else "null::timestamp")

    def own(name: str) -> str:
        return col[name] if name in col else "null::varchar"

    def optional(name: str) -> str:
        return f"nullif({col[name]}, '')" if name in col else "null::varchar"

    return f"""
        select '{_sql_str(code)}'::varchar as dataset,
               '{SOURCE_FORMAT}'::varchar as source_format,
               {col['freq']} as freq,
               {col['TIME_PERIOD']} as time_period,
               {own('geo')} as geo,
               null::varchar as geo_label,
               {own('citizen')} as citizen,
               null::varchar as citizen_label,
               {dimensions} as dimensions,
               null::varchar as dimension_labels,
               case when {value} is null or {value} = ':' then null::double
                    else cast({value} as double) end as obs_value,
               {optional('OBS_FLAG')} as obs_flag,
               {optional('CONF_STATUS')} as conf_status,
               {stamp} as last_update,
               cast({line} as integer) as source_row
        from {rows}
        where not ({is_header})"""


def _connect() -> duckdb.DuckDBPyConnection:
    """A cursor of the process's shared DuckDB instance (the memory limit and a spill folder
    of its own; ``ingest.duck.shared_cursor``): an instance per file was a fixed cost of
    every file."""
    return duck.shared_cursor()


def _sql_str(text: str) -> str:
    return text.replace("'", "''")
