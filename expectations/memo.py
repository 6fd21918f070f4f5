"""Audit results reused for frames that did not change (issue 21, decision 76).

A run with one new release audits again the marts of sources that brought nothing: the same
suite on the same rows, with the same result. Each check that passed in a published build is
remembered in the warehouse itself (``meta.audit_memo``) under a key that covers everything its
result depends on: the suite's expectations, the parameters, the identifying columns, the Great
Expectations version, and the frame's content (its columns and types, its row count and an
order-independent hash of every row, computed by DuckDB without reading the frame into Python).
A later check with the same key is not validated again: its result is the stored GX result of the
run that validated those very rows, marked ``reused_from`` that run. Only passes are stored: a
failure is always validated again, so its messages are the run's own. The memo lives in the
build database, so only the results of builds that were published survive (a failed build is
thrown away with its memo), and on object storage it travels with the published version.
"""
from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb

from ingest import duck

TABLE = "meta.audit_memo"
DDL = f"""
create schema if not exists meta;
create table if not exists {TABLE} (
    check_name varchar not null,
    memo_key varchar not null,
    run_id varchar,
    validated_at timestamptz not null,
    rows_validated bigint not null,
    result_json varchar not null
);
comment on table {TABLE} is 'Great Expectations results of audit checks that passed in a published build, by a key over the suite, its parameters and the content of the rows checked: a later run whose check has the same key reuses the result instead of validating the same rows again (docs/decisions.md 76). Internal to the pipeline.';
comment on column {TABLE}.check_name is 'The audit check (suite name and, for a check per file, its suffix).';
comment on column {TABLE}.memo_key is 'sha256 over the suite''s expectations, the parameters, the identifying columns, the Great Expectations version and the checked rows (columns, types, count, order-independent hash).';
comment on column {TABLE}.run_id is 'The transform run whose audit validated these rows.';
comment on column {TABLE}.validated_at is 'When that validation ran (UTC).';
comment on column {TABLE}.rows_validated is 'Rows of the frame validated.';
comment on column {TABLE}.result_json is 'The Great Expectations validation result, as that run saved it.';
"""


def frame_key(con: duckdb.DuckDBPyConnection, sql: str, suite_json: dict,
              parameters: dict[str, Any], index_columns: tuple[str, ...],
              gx_version: str) -> tuple[str, int]:
    """(memo key, rows) of the frame ``sql`` under the given suite, computed in DuckDB."""
    columns = [(c[0], str(c[1])) for c in con.execute(f"describe select * from ({sql})").fetchall()]
    rows, digest = con.execute(
        f"select count(*), coalesce(sum(hash(frame)), 0)::varchar from ({sql}) as frame"
    ).fetchone()
    payload = json.dumps({"suite": suite_json, "parameters": parameters,
                          "index_columns": list(index_columns), "columns": columns,
                          "rows": rows, "hash": digest, "gx": gx_version},
                         sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest(), rows


def lookup(con: duckdb.DuckDBPyConnection, check_name: str, key: str) -> dict | None:
    """The stored result of a pass with this key ({run_id, validated_at, rows, result}), or None."""
    known = con.execute("""select count(*) from duckdb_tables()
                           where schema_name = 'meta' and table_name = 'audit_memo'""").fetchone()[0]
    if not known:
        return None
    row = con.execute(f"""select run_id, validated_at, rows_validated, result_json from {TABLE}
                          where check_name = ? and memo_key = ?
                          order by validated_at desc limit 1""", [check_name, key]).fetchone()
    if row is None:
        return None
    return {"run_id": row[0], "validated_at": row[1], "rows": row[2],
            "result": json.loads(row[3])}


def remember(db_path: Path, run_id: str | None, passed: list[dict]) -> None:
    """Store the passes of this audit ({check, key, rows, result}), one row per check: a check's
    older entries are replaced (the memo holds what the current build was audited with)."""
    if not passed:
        return
    now = datetime.now(timezone.utc)
    with duck.connect(str(db_path)) as con:
        con.execute(DDL)
        names = sorted({p["check"] for p in passed})
        con.execute(f"delete from {TABLE} where check_name in ({', '.join('?' * len(names))})",
                    names)
        duck.insert_rows(con, TABLE, [(p["check"], p["key"], run_id, now, p["rows"],
                                       json.dumps(p["result"], default=str)) for p in passed])
