"""A source is one folder (issue 19): ``ingest/sources/<name>/`` holds everything that knows it,
and the shared machinery finds it there.

- No Python file outside a source's folder names that source (its folder name or the name of any
  source it declares, as a word, in code, messages or docstrings): the shared code reads the
  specs. Tests, bench and docs aside, as the issue measures it.
- Each source's raw columns are declared once, in its spec; the dbt source YAML of the raw table
  lists the same columns (it drifted before: route_as_published was missing).
- The DAGs, the settings, the allowed hosts and the freshness cadence come from the folders.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from ingest import catalog, config
from ingest.config import REPO_ROOT

SHARED_CODE = ("ingest", "pipeline", "expectations", "dags")
SOURCES_DIR = REPO_ROOT / "ingest" / "sources"


def _words(folder: catalog.SourceFolder) -> set[str]:
    return {folder.package.rsplit(".", 1)[-1], *(s.name for s in folder.specs)}


def test_no_python_file_outside_a_source_folder_names_that_source():
    mentions = []
    for folder in catalog.folders():
        home = SOURCES_DIR / folder.package.rsplit(".", 1)[-1]
        pattern = re.compile(r"\b(" + "|".join(map(re.escape, sorted(_words(folder)))) + r")\b",
                             re.IGNORECASE)
        for top in SHARED_CODE:
            for path in sorted((REPO_ROOT / top).rglob("*.py")):
                if home in path.parents:
                    continue
                for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                    if (found := pattern.search(line)):
                        mentions.append(f"{path.relative_to(REPO_ROOT)}:{number} names "
                                        f"{found.group(0)!r}: {line.strip()[:90]}")
    assert not mentions, ("shared code must read the source specs (ingest.catalog), never name a "
                          "source:\n" + "\n".join(mentions))


def test_the_count_sees_a_source_named_in_shared_code(tmp_path, monkeypatch):
    """The check above is not vacuous: the same pattern finds a name planted in shared code."""
    folder = next(f for f in catalog.folders() if len(f.specs) > 1)
    planted = f"x = '{folder.specs[-1].name.upper()}'  # planted\n"
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, sorted(_words(folder)))) + r")\b",
                         re.IGNORECASE)
    assert pattern.search(planted), f"{sorted(_words(folder))} not found in {planted!r}"
    assert not pattern.search(f"x = '{folder.specs[-1].name}_code'"), \
        "a longer identifier (a seed column such as eurostat_code) must not count as the name"


def _dbt_source_columns() -> dict[str, list[str]]:
    """raw table -> columns, from every dbt source YAML of schema raw."""
    found: dict[str, list[str]] = {}
    for path in (REPO_ROOT / "dbt_project" / "models").rglob("*.yml"):
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for source in doc.get("sources", []) or []:
            if source.get("schema", source.get("name")) != "raw":
                continue
            for table in source.get("tables", []) or []:
                name = table.get("identifier", table["name"])
                found[f"raw.{name}"] = [c["name"] for c in table.get("columns", []) or []]
    return found


@pytest.mark.parametrize("spec", catalog.sources(), ids=lambda s: s.name)
def test_dbt_source_lists_the_columns_the_spec_declares(spec):
    from ingest.spec import LINEAGE_COLUMNS
    declared = _dbt_source_columns()
    assert spec.raw_table in declared, (f"{spec.raw_table} (source {spec.name}) has no dbt source "
                                        "table in dbt_project/models/**/*.yml")
    lineage = [line.split()[0] for line in LINEAGE_COLUMNS.strip().splitlines()]
    in_dbt = [c for c in declared[spec.raw_table] if c not in lineage]
    missing = [c for c in spec.column_names() if c not in in_dbt]
    extra = [c for c in in_dbt if c not in spec.column_names()]
    assert not missing and not extra, (
        f"{spec.raw_table}: the dbt source and the spec (ingest/sources/.../__init__.py) disagree: "
        f"missing in dbt {missing}, in dbt but not in the spec {extra}")


def test_every_source_folder_gives_a_dag_a_cadence_and_its_checks():
    from pipeline.quality.freshness import cadences
    known = cadences()
    for folder in catalog.folders():
        assert folder.dag.dag_id in catalog.dag_ids()
        for spec in folder.specs:
            assert spec.name in known, (
                f"source {spec.name}: the dbt source of {spec.raw_table} declares no "
                "config.meta.expected_cadence (dbt_project/models/staging/<source>/"
                "_<source>__sources.yml, docs/decisions.md 85)")
            assert spec.feeds, f"source {spec.name} feeds no mart (SourceSpec.feeds)"


PROBE = """
from ingest.config import URL, Setting
from ingest.spec import NEWEST_VINTAGE, SourceDag, SourceSpec
SETTINGS = (Setting("WH_ZZ_PROBE_URL", URL, "https://probe.example.org/data", "probe"),)
DAG = SourceDag(dag_id="{dag_id}", task_id="land", schedule="@daily", doc="probe")
SPECS = (SourceSpec(name="{name}", title="Probe", factory="{factory}",
                    raw_table="{table}", columns="a varchar,", release_key=lambda e: (e.dataset,),
                    release_key_doc="-", load_mode=NEWEST_VINTAGE, dag_id="{spec_dag}",
                    asset="zz_probe_landed", url_settings=("zz_probe_url",),
                    feeds=("fct_probe",)),)
"""


def probe_sources(tmp_path, monkeypatch, **folders: dict) -> None:
    """A package of source folders of its own (``folder name -> PROBE fields``) that the catalog
    discovers instead of ingest/sources (the real folders are not touched)."""
    import sys
    package = f"probe_sources_{abs(hash(str(tmp_path))) % 10**8}"
    root = tmp_path / package
    root.mkdir()
    (root / "__init__.py").write_text("")
    for folder, fields in folders.items():
        (root / folder).mkdir()
        values = {"dag_id": "zz_probe_ingest", "name": "zz_probe", "table": "raw.zz_probe",
                  "factory": "ingest.source:Candidate", "spec_dag": fields.get(
                      "dag_id", "zz_probe_ingest"), **fields}
        (root / folder / "__init__.py").write_text(PROBE.format(**values))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(catalog, "SOURCES_PACKAGE", package)
    catalog.folders.cache_clear()
    monkeypatch.setattr(sys, "dont_write_bytecode", True)


@pytest.fixture(autouse=True)
def _fresh_catalog():
    catalog.folders.cache_clear()
    yield
    catalog.folders.cache_clear()


def test_a_new_source_folder_is_found_with_its_dag_settings_and_hosts(tmp_path, monkeypatch):
    """Adding a source is adding a folder: a package with SPECS, DAG and SETTINGS is found by the
    catalog, its setting is read and typed, its host is allowed."""
    from ingest import http
    probe_sources(tmp_path, monkeypatch, zz_probe={})
    assert list(catalog.BY_NAME) == ["zz_probe"]
    assert catalog.dag_ids() == ("zz_probe_ingest",)
    assert config.settings().zz_probe_url == "https://probe.example.org/data"
    assert "probe.example.org" in http.allowed_hosts()
    assert "WH_ALLOWED_HOSTS_ZZ_PROBE" in config.listing()
    monkeypatch.setenv("WH_ZZ_PROBE_URL", "not a url")
    with pytest.raises(config.SettingError, match=r"WH_ZZ_PROBE_URL='not a url': expected "
                                                  r"an http\(s\) URL"):
        config.settings()


@pytest.mark.parametrize("folders, message", [
    ({"a": {"dag_id": "a_ingest", "spec_dag": "b_ingest"}},
     "source zz_probe names DAG 'b_ingest', the folder's DAG is 'a_ingest'"),
    ({"a": {"dag_id": "a_ingest"}, "b": {"dag_id": "b_ingest"}},
     "source name 'zz_probe' is declared twice: in probe_sources_"),
    ({"a": {"dag_id": "a_ingest"}, "b": {"dag_id": "b_ingest", "name": "zz_other"}},
     "raw table 'raw.zz_probe' is declared twice"),
    ({"a": {"dag_id": "x_ingest"}, "b": {"dag_id": "x_ingest", "name": "zz_other",
                                         "table": "raw.zz_other"}},
     "DAG id(s) ['x_ingest'] declared by more than one source folder"),
    ({"a": {"factory": "ingest.no_such_module:Source"}},
     "factory module 'ingest.no_such_module' does not exist"),
    ({"a": {"name": "Zz-Probe"}}, "source name 'Zz-Probe': lower-case letters"),
])
def test_a_broken_source_folder_stops_at_discovery_naming_it(tmp_path, monkeypatch, folders,
                                                              message):
    probe_sources(tmp_path, monkeypatch, **folders)
    with pytest.raises(catalog.CatalogError) as caught:
        catalog.folders()
    assert message in str(caught.value), caught.value


def test_a_broken_source_folder_stops_every_command_cleanly(tmp_path):
    """Not a traceback from an import: exit 2 naming the folder, before anything is touched."""
    import os
    import subprocess
    import sys
    folder = tmp_path / "probe_broken" / "a"
    folder.mkdir(parents=True)
    (tmp_path / "probe_broken" / "__init__.py").write_text("")
    (folder / "__init__.py").write_text("SPECS = ()\n")
    script = ("import sys; from ingest import catalog; catalog.SOURCES_PACKAGE = 'probe_broken'; "
              "from pipeline import run; sys.exit(run.main(sys.argv[1:]))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO_ROOT)])}
    for args in (["settings"], ["files"], ["--help"]):
        done = subprocess.run([sys.executable, "-c", script, *args], cwd=REPO_ROOT, env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 2, (args, done.returncode, done.stderr[-1500:])
        assert "Source folder error: " in done.stderr and "probe_broken/a" in done.stderr, \
            (args, done.stderr[-1500:])
        assert "SPECS is empty" in done.stderr and "Traceback" not in done.stderr, done.stderr
