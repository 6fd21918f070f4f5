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
            assert spec.name in known, (f"source {spec.name} has no row in "
                                        "dbt_project/seeds/source_cadence.csv")
            assert spec.feeds, f"source {spec.name} feeds no mart (SourceSpec.feeds)"
    assert set(known) <= {s.name for s in catalog.sources()}, \
        f"source_cadence.csv names sources no folder declares: {set(known) - set(catalog.BY_NAME)}"


def test_a_new_source_folder_is_found_with_its_dag_settings_and_hosts(tmp_path, monkeypatch):
    """Adding a source is adding a folder: a package under ingest/sources with SPECS, DAG and
    SETTINGS is found by the catalog, its setting is read and typed, its host is allowed."""
    from ingest import http
    folder = SOURCES_DIR / "zz_probe_source"
    folder.mkdir()
    try:
        (folder / "__init__.py").write_text('''
from ingest.config import URL, Setting
from ingest.spec import NEWEST_VINTAGE, SourceDag, SourceSpec
SETTINGS = (Setting("WH_ZZ_PROBE_URL", URL, "https://probe.example.org/data", "probe"),)
DAG = SourceDag(dag_id="zz_probe_ingest", task_id="land", schedule="@daily", doc="probe")
SPECS = (SourceSpec(name="zz_probe", title="Probe", factory="x:Y", raw_table="raw.zz_probe",
                    columns="a varchar,", release_key=lambda e: (e.dataset,),
                    release_key_doc="-", load_mode=NEWEST_VINTAGE, dag_id="zz_probe_ingest",
                    asset="zz_probe_landed", url_settings=("zz_probe_url",)),)
''')
        catalog.folders.cache_clear()
        assert "zz_probe" in catalog.BY_NAME
        assert "zz_probe_ingest" in catalog.dag_ids()
        assert config.settings().zz_probe_url == "https://probe.example.org/data"
        assert "probe.example.org" in http.allowed_hosts()
        monkeypatch.setenv("WH_ZZ_PROBE_URL", "not a url")
        with pytest.raises(config.SettingError, match=r"WH_ZZ_PROBE_URL='not a url': expected "
                                                      r"an http\(s\) URL"):
            config.settings()
    finally:
        for path in sorted(folder.rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
        folder.rmdir()
        catalog.folders.cache_clear()
    assert "zz_probe" not in catalog.BY_NAME
