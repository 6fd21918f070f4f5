"""Bounded memory (issue 21, item 2): every DuckDB connection of the project, and dbt's, runs
with WH_DUCKDB_MEMORY_LIMIT and a spill folder of its own under WH_DUCKDB_TEMP_DIR
(ingest/duck.py, docs/decisions.md 73)."""
from __future__ import annotations

import ast
import json
import subprocess

import duckdb
import pytest

from ingest import config, duck
from ingest.config import REPO_ROOT

CHECKED = ("ingest", "pipeline", "expectations", "dags")


def _bare_connects(path) -> list[int]:
    """Lines of ``path`` that call duckdb.connect (or a ``connect`` imported from duckdb)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    aliases = {"duckdb"}
    direct = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            aliases |= {a.asname for a in node.names if a.name == "duckdb" and a.asname}
        if isinstance(node, ast.ImportFrom) and node.module == "duckdb":
            direct |= {a.asname or a.name for a in node.names if a.name == "connect"}
    lines = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        if ((isinstance(f, ast.Attribute) and f.attr == "connect"
             and isinstance(f.value, ast.Name) and f.value.id in aliases)
                or (isinstance(f, ast.Name) and f.id in direct)):
            lines.append(node.lineno)
    return lines


def test_every_connection_goes_through_the_helper():
    bare = [f"{path.relative_to(REPO_ROOT)}:{line}"
            for top in CHECKED for path in sorted((REPO_ROOT / top).rglob("*.py"))
            if path != REPO_ROOT / "ingest" / "duck.py"
            for line in _bare_connects(path)]
    assert not bare, ("duckdb.connect outside ingest/duck.py (use ingest.duck.connect, which "
                      "applies WH_DUCKDB_MEMORY_LIMIT and a spill folder):\n" + "\n".join(bare))


def test_the_check_finds_a_bare_connect(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("import duckdb as d\nfrom duckdb import connect as c\n"
                      "x = d.connect()\ny = c('f.duckdb')\nz = duck.connect()\n")
    assert _bare_connects(sample) == [3, 4]


def _settings(con) -> tuple[str, str]:
    return con.execute("select current_setting('memory_limit'), "
                       "current_setting('temp_directory')").fetchone()


def test_connections_run_with_the_limit_and_a_spill_folder_each(monkeypatch, tmp_path):
    monkeypatch.setenv("WH_DUCKDB_MEMORY_LIMIT", "300MiB")
    monkeypatch.setenv("WH_DUCKDB_TEMP_DIR", str(tmp_path / "spill"))
    db = tmp_path / "w.duckdb"
    with duckdb.connect(str(db)) as con:  # noqa: a file written by someone else
        con.execute("create table t as select 1 as a")
    with duck.connect() as a, duck.connect() as b, duck.connect(db, read_only=True) as c:
        seen = [_settings(x) for x in (a, b, c)]
        assert {limit for limit, _ in seen} == {"300.0 MiB"}
        folders = [folder for _, folder in seen]
        assert len(set(folders)) == 3, "two DuckDB instances must never spill into one folder"
        assert all(f.startswith(str(tmp_path / "spill")) for f in folders)
        with duck.connect(db, read_only=True) as again:  # the same instance, the same folder
            assert _settings(again) == seen[2]
        # A query larger than the limit spills there and answers.
        a.execute("set memory_limit = '32MiB'")
        assert a.execute("select count(*) from (select md5(i::varchar) s from range(1000000) "
                         "t(i) order by s)").fetchone() == (1000000,)


def test_a_share_of_memory_or_a_size(monkeypatch):
    monkeypatch.delenv("WH_DUCKDB_MEMORY_LIMIT", raising=False)
    total = config.physical_memory()
    assert config.settings().duckdb_memory_limit == max(int(0.04 * total),
                                                         config.MIN_DUCKDB_MEMORY)
    for text, expected in (("1GB", 10**9), ("800MiB", 800 * 2**20), ("2 gib", 2 * 2**30),
                           ("0.5", max(total // 2, config.MIN_DUCKDB_MEMORY))):
        monkeypatch.setenv("WH_DUCKDB_MEMORY_LIMIT", text)
        assert abs(config.settings().duckdb_memory_limit - expected) <= 1, text
    for bad in ("0", "2", "lots", "1KB", "-1GB"):
        monkeypatch.setenv("WH_DUCKDB_MEMORY_LIMIT", bad)
        with pytest.raises(config.SettingError, match="WH_DUCKDB_MEMORY_LIMIT"):
            config.settings()


def test_dbt_gets_its_own_folder_and_the_limit(monkeypatch, tmp_path):
    from pipeline.dbt import dbt_env
    monkeypatch.setenv("WH_DUCKDB_MEMORY_LIMIT", "700MiB")
    monkeypatch.setenv("WH_DUCKDB_TEMP_DIR", str(tmp_path / "spill"))
    one, two = dbt_env(tmp_path / "b.duckdb"), dbt_env(tmp_path / "b.duckdb")
    assert one["WH_DBT_DUCKDB_MEMORY_LIMIT"] == "700MiB"
    assert one["WH_DBT_DUCKDB_TEMP_DIR"] != two["WH_DBT_DUCKDB_TEMP_DIR"]
    assert one["WH_DBT_DUCKDB_TEMP_DIR"].startswith(str(tmp_path / "spill"))


def test_dbt_run_in_a_folder_gets_the_same_profile_every_time(monkeypatch, tmp_path):
    """dbt parses the whole project again when its profile changes: run in a folder, dbt gets a
    link of the same name there (duck.SPILL_LINK), pointing at the folder of its own."""
    from ingest import duck
    from pipeline.dbt import dbt_env
    monkeypatch.setenv("WH_DUCKDB_TEMP_DIR", str(tmp_path / "spill"))
    runs = [tmp_path / "run-1", tmp_path / "run-2"]
    seen = []
    for run in runs:
        run.mkdir()
        env = dbt_env("migration.duckdb", run)
        link = run / duck.SPILL_LINK
        seen.append((env["WH_DBT_DUCKDB_TEMP_DIR"], link.resolve()))
        assert link.is_symlink() and link.resolve().is_dir(), "no spill folder behind the link"
        assert link.resolve().is_relative_to((tmp_path / "spill").resolve())
    assert seen[0][0] == seen[1][0] == duck.SPILL_LINK, (
        f"the profile's temp_directory differs between runs: {seen}")
    assert seen[0][1] != seen[1][1], "two dbt processes share one spill folder"


@pytest.mark.slow
def test_dbt_runs_with_the_limit(monkeypatch, tmp_path):
    """A real dbt process on the project's profile: its connection has the limit and the
    spill folder dbt_env gave it."""
    from pipeline.dbt import PROJECT_DIR, dbt_env, dbt_executable
    monkeypatch.setenv("WH_DUCKDB_MEMORY_LIMIT", "700MiB")
    monkeypatch.setenv("WH_DUCKDB_TEMP_DIR", str(tmp_path / "spill"))
    env = dbt_env(tmp_path / "build.duckdb")
    done = subprocess.run(
        [dbt_executable(), "show", "--inline",
         "select current_setting('memory_limit') as memory_limit, "
         "current_setting('temp_directory') as temp_directory",
         "--project-dir", str(PROJECT_DIR), "--profiles-dir", str(PROJECT_DIR),
         "--target-path", str(tmp_path / "target"), "--log-path", str(tmp_path / "logs"),
         "--output", "json", "--log-format", "json"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    shown = None
    for line in done.stdout.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        preview = event.get("data", {}).get("preview")
        if preview:
            shown = json.loads(preview)[0]
    assert shown == {"memory_limit": "700.0 MiB",
                     "temp_directory": env["WH_DBT_DUCKDB_TEMP_DIR"]}, done.stdout[-3000:]


def test_insert_rows_keeps_every_row_and_value_across_statements():
    """insert_rows (multi-row VALUES, INSERT_CHUNK rows a statement) stores what executemany
    would: every row once, NULLs, timestamps with their zone, booleans and long text, across a
    chunk boundary; no rows inserts nothing."""
    from datetime import datetime, timezone

    rows = [(f"check {i}", i, None if i % 7 == 0 else i / 4, datetime(2025, 1, 1, i % 24,
             tzinfo=timezone.utc), i % 2 == 0, "x" * (i % 300)) for i in range(2 * duck.INSERT_CHUNK + 3)]
    ddl = "create table t (a varchar, b bigint, c double, d timestamptz, e boolean, f varchar)"
    with duckdb.connect() as ours, duckdb.connect() as theirs:
        for con in (ours, theirs):
            con.execute(ddl)
        duck.insert_rows(ours, "t", rows)
        duck.insert_rows(ours, "t", [])
        theirs.executemany("insert into t values (?, ?, ?, ?, ?, ?)", rows)
        got = ours.execute("select * from t order by b").fetchall()
        want = theirs.execute("select * from t order by b").fetchall()
    assert len(got) == len(rows), f"{len(got)} rows stored, {len(rows)} given"
    assert got == want, next(f"row {g[1]}: {g} stored, executemany stores {w}"
                             for g, w in zip(got, want) if g != w)
