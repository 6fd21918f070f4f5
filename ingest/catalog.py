"""Every source, found by discovering its folder.

A source is one folder, ``ingest/sources/<name>/``, whose ``__init__.py`` declares what the rest
of the pipeline needs to know (``ingest.spec``): ``SPECS`` (one ``SourceSpec`` per raw table:
name, the module that finds, fetches and parses its files, raw columns, release key, load mode,
the marts it feeds, its checks), ``DAG`` (the Airflow DAG that lands them, its schedule) and
``SETTINGS`` (its ``WH_*`` variables: URLs, caps). Its code (``source.py``: discovery, fetch,
parse), its checks (``checks.py`` and ``suites/``) and its tests live there too; its dbt staging
folder is where dbt puts it (``dbt_project/models/staging/<name>/``).

Landing (``pipeline.steps``), the raw load (``ingest.load``), the audits
(``expectations.suites_by_stage``), the DAGs (``dags/source_ingest.py``), the settings
(``ingest.config``), the allowed hosts (``ingest.http``) and the file states (``pipeline.files``)
all read this module; none of them names a source. Adding a source: docs/architecture.md.
"""
from __future__ import annotations

import functools
import importlib
import importlib.util
import logging
import pkgutil
import re
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from ingest.spec import SourceDag, SourceSpec

log = logging.getLogger(__name__)

SOURCES_PACKAGE = "ingest.sources"


@dataclass(frozen=True)
class SourceFolder:
    """One folder of ``ingest/sources``: its package and what it declares."""

    package: str
    specs: tuple[SourceSpec, ...]
    dag: SourceDag
    settings: tuple


class CatalogError(ValueError):
    """A source folder that cannot be used; the message names the folder and what is wrong."""


NAME = re.compile(r"[a-z][a-z0-9_]*")


def _module_exists(reference: str) -> bool:
    try:
        return importlib.util.find_spec(reference.split(":")[0]) is not None
    except ModuleNotFoundError:
        return False


def _check(module: ModuleType, specs: tuple, dag) -> None:
    folder, root = Path(module.__file__).parent, Path(__file__).resolve().parents[1]
    where = folder.relative_to(root) if folder.is_relative_to(root) else folder
    if not specs:
        raise CatalogError(f"{where}: SPECS is empty (a source folder declares one SourceSpec "
                           "per raw table)")
    if not isinstance(dag, SourceDag):
        raise CatalogError(f"{where}: no DAG = SourceDag(...) (the DAG that lands its sources)")
    for spec in specs:
        if not isinstance(spec, SourceSpec):
            raise CatalogError(f"{where}: SPECS holds {type(spec).__name__}, not SourceSpec")
        if not NAME.fullmatch(spec.name):
            raise CatalogError(f"{where}: source name {spec.name!r}: lower-case letters, digits "
                               "and _ only (it names landing folders and WH_ALLOWED_HOSTS_<NAME>)")
        if spec.dag_id != dag.dag_id:
            raise CatalogError(f"{where}: source {spec.name} names DAG {spec.dag_id!r}, the "
                               f"folder's DAG is {dag.dag_id!r}")
        for what, reference in (("factory", spec.factory), ("checks", spec.checks),
                                ("enrich", spec.enrich)):
            if reference and not _module_exists(reference):
                raise CatalogError(f"{where}: source {spec.name}: {what} module "
                                   f"{reference.split(':')[0]!r} does not exist")


@functools.cache
def folders() -> tuple[SourceFolder, ...]:
    """Every source folder, in name order. A package under ``ingest/sources`` without ``SPECS``
    is not a source (a warning says so); anything else wrong with a folder stops here, naming
    it, rather than half-way through a run."""
    package = importlib.import_module(SOURCES_PACKAGE)
    found = []
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        if not info.ispkg:
            continue
        try:
            module: ModuleType = importlib.import_module(f"{SOURCES_PACKAGE}.{info.name}")
        except Exception as err:
            raise CatalogError(f"source folder {info.name}: its __init__.py does not import: "
                               f"{type(err).__name__}: {err}") from err
        if not hasattr(module, "SPECS"):
            log.warning("ingest/sources/%s has no SPECS: not a source folder, skipped", info.name)
            continue
        specs, dag = tuple(module.SPECS), getattr(module, "DAG", None)
        _check(module, specs, dag)
        found.append(SourceFolder(module.__name__, specs, dag,
                                  tuple(getattr(module, "SETTINGS", ()))))
    for what, key in (("source name", lambda s: s.name), ("raw table", lambda s: s.raw_table)):
        seen: dict[str, str] = {}
        for folder in found:
            for spec in folder.specs:
                if key(spec) in seen:
                    raise CatalogError(f"{what} {key(spec)!r} is declared twice: in "
                                       f"{seen[key(spec)]} and in {folder.package}")
                seen[key(spec)] = folder.package
    dag_ids = [f.dag.dag_id for f in found]
    if len(dag_ids) != len(set(dag_ids)):
        twice = sorted({d for d in dag_ids if dag_ids.count(d) > 1})
        raise CatalogError(f"DAG id(s) {twice} declared by more than one source folder")
    return tuple(found)


def sources() -> tuple[SourceSpec, ...]:
    return tuple(s for f in folders() for s in f.specs)


def __getattr__(name: str):
    # ``catalog.SOURCES`` / ``catalog.BY_NAME``: computed on first use (the folders are imported
    # then, not when this module is).
    if name == "SOURCES":
        return sources()
    if name == "BY_NAME":
        return {s.name: s for s in sources()}
    raise AttributeError(name)


def spec(name: str) -> SourceSpec:
    found = next((s for s in sources() if s.name == name), None)
    if found is None:
        raise KeyError(f"no source {name!r} in ingest/sources/*/ (sources: "
                       f"{', '.join(s.name for s in sources())})")
    return found


def folder_of(name: str) -> SourceFolder:
    return next(f for f in folders() if any(s.name == name for s in f.specs))


def dags() -> tuple[SourceDag, ...]:
    """The source DAGs, one per folder."""
    return tuple(f.dag for f in folders())


def dag_ids() -> tuple[str, ...]:
    return tuple(d.dag_id for d in dags())


def dag(dag_id: str) -> SourceDag:
    return next(d for d in dags() if d.dag_id == dag_id)


def of_dag(dag_id: str) -> tuple[SourceSpec, ...]:
    return tuple(s for s in sources() if s.dag_id == dag_id)


def by_table(raw_table: str) -> SourceSpec | None:
    return next((s for s in sources() if s.raw_table == raw_table), None)


def feeding(mart: str) -> tuple[str, ...]:
    """The sources whose rows build ``mart`` (``SourceSpec.feeds``)."""
    return tuple(s.name for s in sources() if mart in s.feeds)


def title(name: str) -> str:
    """What an analyst calls a source (its name when it is not one of the folders')."""
    found = next((s for s in sources() if s.name == name), None)
    return found.title if found else name


def label(identifier: str) -> str | None:
    """What an analyst reads for an identifier of a source's rows (its name, a dataset code, a
    measure: ``SourceSpec.labels``), or None when no source folder knows it."""
    for spec in sources():
        found = spec.label(identifier)
        if found:
            return found
    return None


def settings() -> tuple:
    """The settings the source folders declare, and for each source with live URLs its
    ``WH_ALLOWED_HOSTS_<NAME>`` (more hosts it alone may reach)."""
    from ingest.config import HOSTS, Setting
    declared = tuple(s for f in folders() for s in f.settings)
    hosts = tuple(Setting(f"WH_ALLOWED_HOSTS_{s.name.upper()}", HOSTS, "",
                          f"more hosts source {s.name} may reach or be redirected to")
                  for s in sources())
    return declared + hosts


def url_settings() -> tuple[str, ...]:
    """Every setting holding a live URL, of every source."""
    return tuple(dict.fromkeys(a for s in sources() for a in s.url_settings))


def check_modules() -> tuple[tuple[ModuleType, tuple[str, ...]], ...]:
    """Each source checks module with the sources that declare it (its checks blame those
    unless a check names its own)."""
    modules: dict[str, list[str]] = {}
    for s in sources():
        if s.checks:
            modules.setdefault(s.checks, []).append(s.name)
    return tuple((importlib.import_module(m), tuple(names)) for m, names in modules.items())
