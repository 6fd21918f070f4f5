"""Which frames the FTS suite validates: the workbooks of the latest load."""
from __future__ import annotations

from datetime import date
from pathlib import Path

from ingest import duck

from expectations.audit import Check, count_rows, seed_parameters, sql_list


def raw_checks(db: Path, run_id: str | None = None) -> list[Check]:
    with duck.connect(str(db), read_only=True) as con:
        files = [sha for (sha,) in con.execute("""
            select sha256 from raw.load_log where raw_table = 'raw.fts_commitments'
              and run_id = (select arg_max(run_id, loaded_at) from raw.load_log
                            where raw_table = 'raw.fts_commitments')""").fetchall()] if count_rows(
            con, "select count(*) from raw.fts_commitments") else []
    if not files:
        return []
    return [Check(
        "fts_raw_commitments",
        f"""select fts_year, year, fund, beneficiary_name, budget_line_number, amount_eur,
                   landing_file, source_row
            from raw.fts_commitments where sha256 in ({sql_list(files)})""",
        f"raw.fts_commitments, latest load ({len(files)} workbooks)",
        {**seed_parameters(), "first_fts_year": 2000, "last_fts_year": date.today().year},
        ("landing_file", "source_row", "fts_year", "beneficiary_name"))]


def mart_checks(db: Path, run_id: str | None = None) -> list[Check]:
    return []
