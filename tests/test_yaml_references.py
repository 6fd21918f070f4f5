"""Every Python module or function a dbt YAML file names exists (issue 19, item 1).

Descriptions in dbt_project/ say which code loads or reads a table (`ingest.load`,
`pipeline.summary.summary`); they are published as comments in the database, so a stale one
misleads BI users too. Four source descriptions still named the per-source loaders that
`ingest.load.load_source` replaced when sources were declared once (``ingest.load.load_funding``
three times, ``ingest.load.load_eurostat``). Every dotted reference starting with ``ingest.``,
``pipeline.``, ``expectations.`` or ``dags.`` in any YAML file under dbt_project/ (in backticks,
or in prose and comments) is imported here: the module, then each attribute after it. A failure
names the YAML file and line, the reference and what is missing. No dbt, no Airflow, no
database."""
from __future__ import annotations

import importlib
import re
import types
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

DBT_PROJECT = REPO_ROOT / "dbt_project"
SKIPPED_DIRS = {"target", "logs", "dbt_packages"}
"""dbt's own output and installed packages: not written here."""

REFERENCE = re.compile(
    r"(?<![\w./-])((?:ingest|pipeline|expectations|dags)(?:\.[A-Za-z_]\w*)+)")
"""A dotted name from one of the project's packages: `ingest.load`, ingest.load.load_source,
pipeline.quality.store.copy_into. Not a path (dbt_project/ingest.x) nor part of a longer name."""


def yaml_files() -> list[Path]:
    return sorted(p for p in [*DBT_PROJECT.rglob("*.yml"), *DBT_PROJECT.rglob("*.yaml")]
                  if not SKIPPED_DIRS.intersection(p.relative_to(DBT_PROJECT).parts))


def references(path: Path) -> list[tuple[int, str]]:
    """(line, reference) of every dotted reference in ``path``."""
    found = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        found += [(number, m.group(1)) for m in REFERENCE.finditer(line)]
    return found


def missing(reference: str) -> str | None:
    """None when ``reference`` resolves (a module, or a module and attributes of it), else what
    is missing."""
    parts = reference.split(".")
    depth = len(parts)
    while True:
        name = ".".join(parts[:depth])
        try:
            found: object = importlib.import_module(name)
            break
        except ModuleNotFoundError as err:
            if err.name is None or not name.startswith(err.name):
                return f"importing {name} failed: {err}"  # it imports a module that is gone
            depth -= 1
            if not depth:
                return f"no module {name}"
        except Exception as err:  # noqa: BLE001 - any error while importing is the finding
            return f"importing {name} failed: {type(err).__name__}: {err}"
    for i in range(depth, len(parts)):
        if not hasattr(found, parts[i]):
            kind = "module" if isinstance(found, types.ModuleType) else "object"
            return f"{kind} {'.'.join(parts[:i])} has no attribute {parts[i]!r}"
        found = getattr(found, parts[i])
    return None


def unresolved(paths: list[Path]) -> list[str]:
    failures = []
    for path in paths:
        name = path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path
        for line, reference in references(path):
            problem = missing(reference)
            if problem:
                failures.append(f"{name}:{line}: `{reference}`: {problem}")
    return failures


def test_every_python_reference_in_the_dbt_yaml_exists():
    paths = yaml_files()
    assert len(paths) > 15, paths  # the glob found the project's YAML
    assert sum(len(references(p)) for p in paths) >= 10  # and the references in it
    failures = unresolved(paths)
    assert not failures, ("dbt YAML names Python code that does not exist:\n"
                          + "\n".join(failures))


@pytest.mark.parametrize("text, reference, problem", [
    ("loaded by `ingest.load.load_funding`", "ingest.load.load_funding",
     "module ingest.load has no attribute 'load_funding'"),
    ("read by `ingest.no_such_module`", "ingest.no_such_module",
     "module ingest has no attribute 'no_such_module'"),
    ("see pipeline.quality.store.no_such_function.", "pipeline.quality.store.no_such_function",
     "module pipeline.quality.store has no attribute 'no_such_function'"),
    ("`pipeline.quality.store.copy_into.attr`", "pipeline.quality.store.copy_into.attr",
     "object pipeline.quality.store.copy_into has no attribute 'attr'"),
])
def test_a_stale_reference_is_named_with_its_file_line_and_what_is_missing(tmp_path, text,
                                                                            reference, problem):
    probe = tmp_path / "_probe.yml"
    probe.write_text(f"version: 2\n# {text}\n", encoding="utf-8")
    assert unresolved([probe]) == [f"{probe}:2: `{reference}`: {problem}"]


@pytest.mark.parametrize("text", [
    "loaded by `ingest.load` after validation",
    "the recorder (pipeline.quality.record) copies",
    "`pipeline.warehouse.drop_build_internals`",
    "`pipeline.summary.summary`",
])
def test_a_reference_that_exists_resolves(tmp_path, text):
    probe = tmp_path / "_probe.yml"
    probe.write_text(f"version: 2\n# {text}\n", encoding="utf-8")
    assert references(probe) and unresolved([probe]) == []


def test_paths_and_longer_names_are_not_references(tmp_path):
    probe = tmp_path / "_probe.yml"
    probe.write_text("# dbt_project/ingest.yml, my_pipeline.step, ../ingest.x, pipeline. Next\n",
                     encoding="utf-8")
    assert references(probe) == []
