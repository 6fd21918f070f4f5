"""Every SQL example of the README and docs/bi.md runs as written on a published warehouse
(issue 22, item 5).

The examples are extracted from the Markdown itself, so an example added, changed or broken
is run: each ``duckdb -readonly ...`` command of a fenced shell block through the real DuckDB
command-line tool of the environment (``.venv/bin/duckdb``, the PyPI package duckdb-cli pinned
to the DuckDB version of requirements.txt), each statement of a fenced ``sql`` block through
DuckDB's Python API on a read-only connection. The warehouse is the session build
(``built_db``) published with its quality history, as a run publishes it (``published_db``).
A failing example names its file, its line and DuckDB's error."""
from __future__ import annotations

import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from tests.conftest import REPO_ROOT

DOCUMENTS = ("README.md", "docs/bi.md")
DOCUMENTED_DB = "warehouse/migration.duckdb"
"""The path every example opens (the default WH_WAREHOUSE, relative to the checkout)."""
DOCUMENTED_CLI = ".venv/bin/duckdb"
"""How the examples call the CLI: the venv `make run` and `make test` create."""

NOT_RUN_HERE = {
    "-- the warehouse published by run": "reader-sql's output: attaches a version over S3 "
                                         "(tests/test_bi_reader.py runs it against SeaweedFS)",
    ".venv/bin/duckdb -init attach.sql": "the same SQL through the CLI, on object storage",
}
"""Examples left out, by how they start, with where they are tested instead: they need an S3
server and its credentials."""

EMPTY_ON_THE_RECORDED_DATA = {
    "marts.rpt_border_crossings_route_revisions": "one Frontex release recorded: nothing revised",
    "marts.rpt_border_crossings_revisions": "one Frontex release recorded: nothing revised",
}
"""Examples that may return no rows on the session build, by the table they read, and why
(tests/test_revisions.py fills these marts with a second release)."""

FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>\w*)\s*$")


@dataclass(frozen=True)
class Example:
    document: str
    line: int          # 1-based line in the document where the example starts
    kind: str          # "cli" (a shell command) or "sql" (a statement of a sql block)
    text: str          # the command line, or the SQL statement

    def where(self) -> str:
        return f"{self.document}:{self.line}"


def fenced_blocks(text: str) -> list[tuple[str, int, str]]:
    """(language, line of the first line inside the fence, body) of each fenced block."""
    blocks, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        indent, body, j = opening["indent"], [], i + 1
        while j < len(lines) and lines[j].strip() != "```":
            body.append(lines[j][len(indent):] if lines[j].startswith(indent) else lines[j])
            j += 1
        blocks.append((opening["lang"], i + 2, "\n".join(body)))
        i = j + 1
    return blocks


def shell_commands(body: str, first_line: int) -> list[tuple[int, str]]:
    """The commands of a shell block with the line each starts on: comments dropped, a
    backslash-newline continues the command, a newline inside quotes belongs to it."""
    commands, current, start, quote = [], [], None, None
    line = first_line
    i = 0
    while i < len(body):
        ch = body[i]
        if quote is None and ch == "#" and (not current or "".join(current).strip() == ""):
            while i < len(body) and body[i] != "\n":  # a comment line
                i += 1
            continue
        if quote is None and ch == "\\" and body[i + 1:i + 2] == "\n":
            current.append(" ")
            i += 2
            line += 1
            continue
        if ch == "\n":
            line += 1
            if quote is None:
                if "".join(current).strip():
                    commands.append((start, "".join(current).strip()))
                current, start = [], None
                i += 1
                continue
        if ch in "\"'" and quote is None:
            quote = ch
        elif ch == quote:
            quote = None
        if start is None and not ch.isspace():
            start = line
        current.append(ch)
        i += 1
    if "".join(current).strip():
        commands.append((start, "".join(current).strip()))
    return commands


def examples(document: str) -> list[Example]:
    text = (REPO_ROOT / document).read_text(encoding="utf-8")
    found = []
    for lang, first_line, body in fenced_blocks(text):
        if lang == "sh":
            for line, command in shell_commands(body, first_line):
                words = shlex.split(command, comments=True)
                if (words and Path(words[0]).name == "duckdb"
                        and not any(command.startswith(head) for head in NOT_RUN_HERE)):
                    found.append(Example(document, line, "cli", command))
        elif lang == "sql":
            if any(body.lstrip().startswith(head) for head in NOT_RUN_HERE):
                continue
            # Each statement with its own line: DuckDB splits them, the line is found by text.
            offset = 0
            for statement in duckdb.extract_statements(body):
                sql = statement.query.strip()
                head = sql.splitlines()[0] if sql else ""
                at = body.find(head, offset) if head else -1
                line = first_line + body.count("\n", 0, at) if at >= 0 else first_line
                offset = max(offset, at + 1)
                found.append(Example(document, line, "sql", sql))
    return found


ALL_EXAMPLES = [e for document in DOCUMENTS for e in examples(document)]


def test_the_examples_are_found():
    """The extraction sees what the documents show: the README's and bi.md's duckdb commands
    (each a `.venv/bin/duckdb -readonly warehouse/migration.duckdb "..."`) and their sql blocks.
    Counted by hand in the Markdown."""
    cli = [e for e in ALL_EXAMPLES if e.kind == "cli"]
    sql = [e for e in ALL_EXAMPLES if e.kind == "sql"]
    assert {e.document for e in cli} == set(DOCUMENTS), cli
    assert len(cli) >= 8, [e.where() for e in cli]
    assert len(sql) >= 7, [e.where() for e in sql]
    wrong = [f"{e.where()}: {e.text[:60]}" for e in cli
             if shlex.split(e.text, comments=True)[:3] != [DOCUMENTED_CLI, "-readonly", DOCUMENTED_DB]]
    assert not wrong, (f"duckdb examples must read `{DOCUMENTED_CLI} -readonly {DOCUMENTED_DB} "
                       f"\"...\"` (the venv's CLI, the documented file, read-only): {wrong}")


def test_the_extraction_keeps_lines_and_continuations():
    body = ('# a comment\nduckdb -readonly w.duckdb \\\n  "select 1,\n   2"\n\n'
            'duckdb -readonly w.duckdb "select \'#\'"\n')
    assert shell_commands(body, 10) == [
        (11, 'duckdb -readonly w.duckdb    "select 1,\n   2"'),
        (15, "duckdb -readonly w.duckdb \"select '#'\"")]
    text = "intro\n\n  ```sql\n  select 1;\n  select\n    2;\n  ```\n"
    assert fenced_blocks(text) == [("sql", 4, "select 1;\nselect\n  2;")]


def test_the_cli_is_the_pinned_duckdb():
    """requirements.txt pins duckdb-cli to the version of duckdb, and the venv has its
    executable: the README's commands work on a fresh clone after `make run` or `make test`."""
    pins = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)$",
                           (REPO_ROOT / "requirements.txt").read_text(encoding="utf-8"), re.M))
    assert pins.get("duckdb-cli") == pins["duckdb"], (
        f"requirements.txt: duckdb-cli=={pins.get('duckdb-cli')} but duckdb=={pins['duckdb']}")
    cli = Path(sys.executable).parent / "duckdb"
    assert cli.is_file(), f"{cli} missing: pip install -r requirements.txt (duckdb-cli)"
    out = subprocess.run([str(cli), "-noheader", "-list", "-c", "select version()"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == f"v{pins['duckdb']}", (out.stdout,
                                                                                out.stderr)


@pytest.mark.parametrize("example", [e for e in ALL_EXAMPLES if e.kind == "cli"],
                         ids=lambda e: e.where())
def test_a_cli_example_runs(example, published_db):
    words = shlex.split(example.text, comments=True)
    argv = [str(Path(sys.executable).parent / "duckdb"),
            *[str(published_db) if w == DOCUMENTED_DB else w for w in words[1:]]]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=120,
                         cwd=published_db.parent)
    if out.returncode != 0 or "Error" in out.stderr:
        pytest.fail(f"{example.where()}: the example fails: "
                    f"{out.stderr.strip() or out.stdout[-500:]}\n{example.text}", pytrace=False)
    empty = bool(re.search(r"^\s*0 rows\s*$", out.stdout, re.M)) or not out.stdout.strip()
    allowed = [why for table, why in EMPTY_ON_THE_RECORDED_DATA.items() if table in example.text]
    if empty and not allowed:
        pytest.fail(f"{example.where()}: the example returns no rows on the recorded data:\n"
                    f"{example.text}\n{out.stdout}", pytrace=False)


@pytest.fixture(scope="module")
def con(published_db):
    with duckdb.connect(str(published_db), read_only=True) as connection:
        yield connection


@pytest.mark.parametrize("example", [e for e in ALL_EXAMPLES if e.kind == "sql"],
                         ids=lambda e: e.where())
def test_a_sql_example_runs(example, con):
    try:
        rows = con.execute(example.text).fetchall()
    except duckdb.Error as err:
        pytest.fail(f"{example.where()}: the example fails: {err}\n{example.text}", pytrace=False)
    if not rows:
        pytest.fail(f"{example.where()}: the example returns no rows:\n{example.text}",
                    pytrace=False)
