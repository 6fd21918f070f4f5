"""The parsed form of landed files: parse each file once.

Landing validates a file by parsing it; the rows it parsed are then kept as Parquet under
``<landing>/parsed/`` (the landed file's path with ``.parquet`` added), so the raw load reads
them with DuckDB instead of parsing the bytes again. Each Parquet file records, in its key-value
metadata, the sha256 of the bytes it was parsed from and the parser fingerprint (a hash of the
parsing code in ``ingest/`` and of the seeds the parsers read). The load uses a parsed file only
when both match; otherwise (a file landed before this existed, a parser or seed changed since,
a parsed file deleted) it parses the landed bytes and writes the parsed form anew. The landed
bytes stay the record; ``parsed/`` is a cache that can be deleted at any time. With
``WH_STORAGE_URL`` set it is kept as objects ``parsed/<fingerprint>/<landing path>.parquet``
too, so that a task on another host reads it instead of parsing again.
"""
from __future__ import annotations

import functools
import hashlib
import logging
import os
from datetime import date
from pathlib import Path

import duckdb

from ingest import duck
from ingest.config import REPO_ROOT, SEEDS_DIR
from ingest.landing import Landing, ManifestEntry

log = logging.getLogger(__name__)

PARSED_DIR = "parsed"
FORMAT_VERSION = "1"
"""Bumped when the layout of the parsed files themselves changes."""


def parser_files() -> list[Path]:
    """What ``fingerprint`` hashes."""
    return sorted([*(REPO_ROOT / "ingest").rglob("*.py"), *SEEDS_DIR.glob("*.csv")])


@functools.lru_cache(maxsize=1)
def fingerprint() -> str:
    """Hash of everything a parser's output depends on besides the bytes: the code of the
    ``ingest`` package, the source folders under it included, and the seeds under
    ``dbt_project/seeds`` (layouts, aliases, codes)."""
    digest = hashlib.sha256(FORMAT_VERSION.encode())
    for path in parser_files():
        digest.update(path.relative_to(REPO_ROOT).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def path_for(landing: Landing, entry: ManifestEntry) -> Path:
    return landing.root / PARSED_DIR / f"{entry.path}.parquet"


def write(landing: Landing, entry: ManifestEntry, rows, release_date: date | None,
          dataset: str | None) -> Path:
    """Keep ``rows`` parsed from ``entry`` as Parquet, atomically. ``rows`` is a DataFrame, or
    an object that writes itself (``write_parquet(path, kv_metadata)``, ``len()``): rows a
    parser produced in DuckDB, never held in Python."""
    target = path_for(landing, entry)
    target.parent.mkdir(parents=True, exist_ok=True)
    staged = target.with_name(f".{target.name}.{os.getpid()}.part")
    meta = {"sha256": entry.sha256, "parser": fingerprint(), "landing_file": entry.path,
            "release_date": release_date.isoformat() if release_date else "",
            "dataset": dataset or ""}
    if hasattr(rows, "write_parquet"):
        rows.write_parquet(staged, meta)
    else:
        with duck.connect() as con:
            con.register("parsed_rows", rows)
            con.execute(f"copy parsed_rows to '{_sql_path(staged)}' "
                        f"(format parquet, compression zstd, kv_metadata {{{kv_sql(meta)}}})")
    os.replace(staged, target)
    if landing.store is not None:  # kept beside the landed objects, for every host
        landing.store.put(object_key(entry), target)
    log.info("kept the parsed form of %s (%s rows): %s", entry.path, f"{len(rows):,}",
             target.relative_to(landing.root))
    return target


def object_key(entry: ManifestEntry) -> str:
    """The parsed form's object under ``WH_STORAGE_URL``: one per parser fingerprint, so that
    hosts running two versions of the code never overwrite each other's."""
    return f"{PARSED_DIR}/{fingerprint()}/{entry.path}.parquet"


def lookup(landing: Landing, entry: ManifestEntry,
           con: duckdb.DuckDBPyConnection | None = None) -> tuple[Path, dict[str, str]] | None:
    """The parsed file of ``entry`` and its metadata, when it exists and was parsed from these
    bytes by the parsers of this code; else None. ``con``: a connection to read it with (the
    load's), else an in-memory one."""
    target = path_for(landing, entry)
    if not target.exists() and landing.store is not None:
        landing.store.download(object_key(entry), target)
    if not target.exists():
        return None
    try:
        reader = con if con is not None else duck.connect()
        try:
            meta = {k.decode(): v.decode() for k, v in reader.execute(
                "select key, value from parquet_kv_metadata(?)", [str(target)]).fetchall()}
        finally:
            if con is None:
                reader.close()
    except duckdb.Error as err:
        log.warning("parsed form of %s unreadable (%s): parsing the landed file", entry.path, err)
        return None
    if meta.get("sha256") != entry.sha256:
        log.warning("parsed form of %s is of other bytes: parsing the landed file", entry.path)
        return None
    if meta.get("parser") != fingerprint():
        log.info("parsed form of %s is from another parser version: parsing again", entry.path)
        return None
    return target, meta


def kv_sql(meta: dict[str, str]) -> str:
    """``meta`` as the body of a COPY ... (KV_METADATA {...}) option."""
    return ", ".join(f"{k}: '{v.replace(chr(39), chr(39) * 2)}'" for k, v in meta.items())


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")
