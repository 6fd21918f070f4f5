"""Every setting, declared once: name, type, default and what it does.

Each setting is an environment variable ``WH_*`` (Airflow Variables are not used on purpose: the
same code runs under ``make run``, pytest and the docker-compose topology, and all three set
plain environment variables). The shared ones are declared here (``SHARED``); a source folder
declares its own in its ``SETTINGS`` (``ingest/sources/<name>/__init__.py``), found by
``ingest.catalog``. ``settings()`` reads them all on every call, so a test or a runner can change
them before a step runs; a value that is not of its type fails naming the variable, what it
expects and its default. ``python -m pipeline.run settings`` lists them with their current
values.
"""
from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

REPO_ROOT = Path(__file__).resolve().parents[1]
SEEDS_DIR = REPO_ROOT / "dbt_project" / "seeds"
MB = 1024 * 1024
NOT_SETTINGS = ("WH_SHARED_DIR", "WH_TOPOLOGY_")
"""Names (prefixes) of the test suite's own ``WH_*`` variables: not settings of the pipeline, no
warning when they are set."""


class SettingError(ValueError):
    """A setting whose value is not what it expects (names the variable)."""


@dataclass(frozen=True)
class Kind:
    """A type of setting: how its text becomes a value, and what it expects (for errors and the
    listing)."""

    name: str
    expects: str
    parse: Callable[[str], Any]


def _number(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def _positive(text: str) -> float:
    value = _number(text)
    if value <= 0:
        raise ValueError(text)
    return value


def _not_negative(text: str) -> float:
    value = _number(text)
    if value < 0:
        raise ValueError(text)
    return value


def _whole(text: str) -> int:
    if not re.fullmatch(r"[0-9]+", text, re.ASCII):
        raise ValueError(text)
    return int(text)


def _count(text: str) -> int:
    return _whole(text)


def _at_least_one(text: str) -> int:
    value = _whole(text)
    if value < 1:
        raise ValueError(text)
    return value


def _year(text: str) -> int:
    if not re.fullmatch(r"[12][0-9]{3}", text, re.ASCII):
        raise ValueError(text)
    return int(text)


def _share(text: str) -> float:
    value = _positive(text)
    if value > 1:
        raise ValueError(text)
    return value


def _megabytes(text: str) -> int:
    value = int(_positive(text) * MB)
    if value < 1:
        raise ValueError(text)
    return value


def _path(text: str) -> Path:
    return Path(text).expanduser().resolve()


HOST = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*", re.ASCII)


def _url(text: str) -> str:
    parts = urlsplit(text)
    if (parts.scheme not in ("http", "https") or not parts.hostname or " " in text
            or not HOST.fullmatch(parts.hostname)):
        raise ValueError(text)
    parts.port  # noqa: B018 - raises ValueError on a port out of range
    return text


def _hosts(text: str) -> frozenset[str]:
    hosts = frozenset(h.strip().lower() for h in text.split(",") if h.strip())
    if any(not HOST.fullmatch(h) for h in hosts):
        raise ValueError(text)
    return hosts


S3_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", re.ASCII)


def _s3_url(text: str) -> str:
    """s3://<bucket>[/<prefix>], without a trailing slash."""
    if not text.startswith("s3://") or any(c.isspace() for c in text):
        raise ValueError(text)
    bucket, _, prefix = text[len("s3://"):].partition("/")
    prefix = prefix.rstrip("/")
    if (not S3_BUCKET.fullmatch(bucket) or ".." in bucket
            or any(p in ("", ".", "..") for p in prefix.split("/") if prefix)):
        raise ValueError(text)
    return f"s3://{bucket}" + (f"/{prefix}" if prefix else "")


_SIZE = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*([KMGT]i?B)", re.ASCII | re.IGNORECASE)
_SIZE_UNITS = {"k": 1000, "m": 1000 ** 2, "g": 1000 ** 3, "t": 1000 ** 4,
               "ki": 1024, "mi": 1024 ** 2, "gi": 1024 ** 3, "ti": 1024 ** 4}
MIN_DUCKDB_MEMORY = 512 * MB
"""A share of RAM never gives DuckDB less than this (a small box would fail its builds)."""


def physical_memory() -> int:
    """Bytes of memory this process may use: the machine's RAM, or less under a cgroup v2
    memory limit (a container)."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    try:
        cap = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if cap.isdigit():
            total = min(total, int(cap))
    except OSError:
        pass
    return total


def _memory_size(text: str) -> int:
    """A size (1GB, 800MiB) or a share of this machine's memory (0.04): bytes."""
    if m := _SIZE.fullmatch(text.strip()):
        value = int(float(m.group(1)) * _SIZE_UNITS[m.group(2)[:-1].lower()])
        if value < 16 * MB:
            raise ValueError(text)
        return value
    return max(int(_share(text) * physical_memory()), MIN_DUCKDB_MEMORY)


def _flag(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(text)


PATH = Kind("path", "a file or folder path", _path)
URL = Kind("url", "an http(s) URL", _url)
URL_BASE = Kind("url", "an http(s) URL", lambda t: _url(t).rstrip("/"))
TEXT = Kind("text", "text", str)
HOSTS = Kind("hosts", "host names separated by commas (no scheme, port or path)", _hosts)
COUNT = Kind("count", "a whole number, 0 or more", _count)
POSITIVE_COUNT = Kind("count", "a whole number, 1 or more", _at_least_one)
YEAR = Kind("year", "a year (four digits)", _year)
SECONDS = Kind("seconds", "a number of seconds, more than zero", _positive)
SECONDS_OR_ZERO = Kind("seconds", "a number of seconds, zero or more", _not_negative)
MINUTES = Kind("minutes", "a number of minutes, more than zero", _positive)
MINUTES_OR_ZERO = Kind("minutes", "a number of minutes, zero or more", _not_negative)
DAYS = Kind("days", "a number of days, more than zero", _positive)
DAYS_OR_ZERO = Kind("days", "a number of days, zero or more", _not_negative)
SHARE = Kind("share", "a share, more than 0 and at most 1 (0.05 = 5 %)", _share)
MEGABYTES = Kind("megabytes", "a number of megabytes, more than zero", _megabytes)
FLAG = Kind("flag", "true or false", _flag)
MEMORY = Kind("size", "a size such as 1GB or 800MiB (16MB or more), or a share of this machine's "
              "memory, more than 0 and at most 1 (0.04 = 4 %)", _memory_size)
S3_URL = Kind("s3 url", "s3://<bucket>/<prefix> (a bucket of 3 to 63 characters a-z, 0-9, '.', "
              "'-'; the prefix optional)", _s3_url)


@dataclass(frozen=True)
class Setting:
    """One ``WH_*`` variable. ``default`` is text read like the variable's own value, or a
    function of the settings resolved before it (a path relative to another), or None (unset)."""

    name: str
    kind: Kind
    default: str | Callable[[Mapping[str, Any]], Any] | None
    description: str
    attr: str | None = None
    """The attribute of ``settings()``; by default the name without ``WH_``, in lower case."""
    internal: bool = False
    """Set by the pipeline itself for its subprocesses, not by users."""

    @property
    def key(self) -> str:
        return self.attr or self.name.removeprefix("WH_").lower()

    def default_text(self) -> str:
        if self.default is None:
            return "(unset)"
        if self.default == "":
            return "(none)"
        if callable(self.default):
            return (self.default.__doc__ or "computed").strip()
        return self.default

    def read(self, environ: Mapping[str, str], resolved: Mapping[str, Any]) -> Any:
        raw = environ.get(self.name, "").strip()
        if not raw:
            if self.default is None:
                return None
            if callable(self.default):
                return self.default(resolved)
            try:
                return self.kind.parse(self.default)
            except (ValueError, TypeError, RuntimeError):
                raise SettingError(f"{self.name}: its declared default {self.default!r} is not "
                                   f"{self.kind.expects} (fix the declaration)") from None
        try:
            return self.kind.parse(raw)
        except (ValueError, TypeError, RuntimeError):
            raise SettingError(f"{self.name}={raw!r}: expected {self.kind.expects} "
                               f"(default {self.default_text()})") from None


def _scratch_dir(resolved: Mapping[str, Any]) -> Path:
    """<the system temp dir>/wh-scratch"""
    import tempfile
    return Path(tempfile.gettempdir()).resolve() / "wh-scratch"


def _task_scratch(resolved: Mapping[str, Any]) -> Path | None:
    """<WH_SCRATCH_DIR>/task-<pid> when WH_STORAGE_URL is set, else none"""
    if not resolved["storage_url"]:
        return None
    return resolved["scratch_dir"] / f"task-{os.getpid()}"


def _landing_dir(resolved: Mapping[str, Any]) -> Path:
    """<checkout>/landing (with WH_STORAGE_URL: <WH_SCRATCH_DIR>/task-<pid>/landing)"""
    return (resolved["scratch"] or REPO_ROOT) / "landing"


def _warehouse(resolved: Mapping[str, Any]) -> Path:
    """<checkout>/warehouse/migration.duckdb (with WH_STORAGE_URL: under <WH_SCRATCH_DIR>/task-<pid>)"""
    return (resolved["scratch"] or REPO_ROOT) / "warehouse" / "migration.duckdb"


def _runs_dir(resolved: Mapping[str, Any]) -> Path:
    """beside WH_WAREHOUSE: <its folder>/runs"""
    return resolved["warehouse"].parent / "runs"


def _curated_dir(resolved: Mapping[str, Any]) -> Path | None:
    """WH_SNAPSHOT_DIR"""
    return resolved["snapshot_dir"]


def _duckdb_temp_dir(resolved: Mapping[str, Any]) -> Path:
    """<WH_RUNS_DIR>/.duckdb-tmp (with WH_STORAGE_URL: in the task scratch, as the runs are)"""
    return resolved["runs_dir"] / ".duckdb-tmp"


def _quality_db(resolved: Mapping[str, Any]) -> Path:
    """beside WH_WAREHOUSE: <its folder>/quality_history.duckdb"""
    # Not "quality.duckdb": DuckDB names a file's catalog after its stem, and a catalog named
    # like the schema "quality" makes every "quality.<table>" ambiguous.
    return resolved["warehouse"].with_name("quality_history.duckdb")


def _reports_dir(resolved: Mapping[str, Any]) -> Path:
    """<WH_WAREHOUSE's folder>/../reports/quality"""
    return resolved["warehouse"].parent.parent / "reports" / "quality"


SHARED: tuple[Setting, ...] = (
    # Object storage (ingest/storage.py): instead of the local folders below.
    Setting("WH_STORAGE_URL", S3_URL, None,
            "keep landing, the warehouse, the runs, the quality history and the reports in this "
            "S3 bucket and prefix instead of local files; the endpoint and credentials are the "
            "standard AWS_ENDPOINT_URL (required with it), AWS_ACCESS_KEY_ID, "
            "AWS_SECRET_ACCESS_KEY, AWS_REGION (default us-east-1), AWS_SESSION_TOKEN"),
    Setting("WH_SCRATCH_DIR", PATH, _scratch_dir,
            "local scratch space of the tasks when WH_STORAGE_URL is set: each process works "
            "in a folder of its own there, which its tasks remove"),
    Setting("WH_TASK_SCRATCH", PATH, _task_scratch,
            "this process's scratch folder (WH_STORAGE_URL set): the local folders below "
            "default into it", internal=True, attr="scratch"),
    # Where things are.
    Setting("WH_SNAPSHOT_DIR", PATH, None,
            "replay recorded files laid out like ../shared/data instead of fetching live"),
    Setting("WH_CURATED_DIR", PATH, _curated_dir,
            "hand-curated files with no live endpoint (published figures, curated tables), laid out "
            "like ../shared/data; unset in live mode: not loaded (with a warning)"),
    Setting("WH_LANDING_DIR", PATH, _landing_dir,
            "immutable landed files and their manifest (with WH_STORAGE_URL: a scratch cache of "
            "the landed objects)"),
    Setting("WH_WAREHOUSE", PATH, _warehouse,
            "the published DuckDB file BI tools read (with WH_STORAGE_URL: a scratch copy of the "
            "published object)"),
    Setting("WH_RUNS_DIR", PATH, _runs_dir,
            "one folder per transform run (build database, audit results, failure)"),
    Setting("WH_QUALITY_DB", PATH, _quality_db,
            "the quality history: every transform run, published or failed, and its checks"),
    Setting("WH_REPORTS_DIR", PATH, _reports_dir,
            "the data-quality reports (one per run, latest.html the newest)"),
    # DuckDB: every connection the pipeline opens (ingest.duck.connect) and dbt's profile.
    Setting("WH_DUCKDB_MEMORY_LIMIT", MEMORY, "0.04",
            "DuckDB's memory_limit in every connection and in dbt (one process, its threads "
            "sharing it): a size (1GB) or a share of this machine's memory (a share gives at "
            "least 512 MiB); past it DuckDB spills to WH_DUCKDB_TEMP_DIR",
            attr="duckdb_memory_limit"),
    Setting("WH_DUCKDB_TEMP_DIR", PATH, _duckdb_temp_dir,
            "where DuckDB spills what does not fit in WH_DUCKDB_MEMORY_LIMIT: a folder per "
            "process and connection under it, removed when it closes",
            attr="duckdb_temp_dir"),
    # HTTP: every call bounded in size and time.
    Setting("WH_HTTP_TIMEOUT_S", SECONDS, "60", "connect and read timeout of one request"),
    Setting("WH_DOWNLOAD_DEADLINE_S", SECONDS, "900",
            "the whole of one download, however slowly the bytes arrive (the timeout is per "
            "read)"),
    Setting("WH_PAGE_DEADLINE_S", SECONDS, "120",
            "the whole of one page or JSON fetch, retries and their waits included"),
    Setting("WH_HTTP_RETRIES", COUNT, "4",
            "retries on connection errors, 429 and 5xx, with backoff"),
    Setting("WH_HTTP_BACKOFF_S", SECONDS_OR_ZERO, "2",
            "backoff factor between retries (doubles at each retry)"),
    Setting("WH_HTTP_MAX_RETRY_AFTER_S", SECONDS_OR_ZERO, "120",
            "the longest Retry-After (429, 503) the client waits; longer fails at once"),
    Setting("WH_MAX_DOWNLOAD_MB", MEGABYTES, "50",
            "a download (or a replayed file) larger than this is refused",
            attr="max_download_bytes"),
    Setting("WH_MAX_PAGE_MB", MEGABYTES, "20",
            "size cap of a page or JSON answer, checked while streaming", attr="max_page_bytes"),
    Setting("WH_MAX_XLSX_UNPACKED_MB", MEGABYTES, "512",
            "a workbook whose parts unpack to more is refused before it is parsed",
            attr="max_xlsx_unpacked_bytes"),
    Setting("WH_ALLOWED_HOSTS", HOSTS, "",
            "more hosts every source may reach or be redirected to (a publisher's CDN)"),
    # Airflow tasks.
    Setting("WH_SOURCE_TASK_TIMEOUT_MIN", MINUTES, "60",
            "Airflow fails a source task that runs longer"),
    Setting("WH_TRANSFORM_TASK_TIMEOUT_MIN", MINUTES, "120",
            "Airflow fails a transform or report task that runs longer"),
    Setting("WH_SOURCE_TASK_RETRIES", COUNT, "2",
            "retries of a source task on network errors (make run sets 0)"),
    Setting("WH_TRANSFORM_TASK_RETRIES", COUNT, "1",
            "retries of a transform task whose worker died or was killed (a step that fails "
            "on its own is never retried; make run sets 0)"),
    Setting("WH_SOURCE_RETRY_DELAY_MIN", MINUTES_OR_ZERO, "5",
            "first delay before a source task is retried (then exponential)"),
    # The warehouse.
    Setting("WH_TRANSFORM_LOCK_WAIT_S", SECONDS_OR_ZERO, "600",
            "how long a run waits for another run building the warehouse before failing"),
    Setting("WH_TRANSFORM_LEASE_IDLE_S", SECONDS, "1800",
            "a scheduled run's hold on the warehouse with no step running expires after this"),
    Setting("WH_KEEP_FAILED_BUILDS", COUNT, "3",
            "failed runs whose build database is kept for diagnosis (the newest)"),
    Setting("WH_KEEP_FAILED_BUILDS_DAYS", DAYS_OR_ZERO, "7",
            "failed builds younger than this are kept whatever their number"),
    Setting("WH_KEEP_PUBLISHES", POSITIVE_COUNT, "10",
            "published runs whose artefacts are kept (run folder: dbt target and docs, GX "
            "results and Data Docs; the report's copies and the reports written since): the "
            "newest N; the current publish always"),
    Setting("WH_KEEP_PUBLISHES_DAYS", DAYS_OR_ZERO, "90",
            "published runs recorded within this many days keep their artefacts whatever "
            "their number (with WH_KEEP_PUBLISHES: whichever keeps more)"),
    Setting("WH_KEEP_PUBLISHED_VERSIONS", POSITIVE_COUNT, "5",
            "object storage: published versions of the warehouse kept (the newest; the current "
            "one always)"),
    Setting("WH_KEEP_REPLACED_VERSIONS_DAYS", DAYS_OR_ZERO, "1",
            "object storage: a replaced version is kept this long after the next publish, "
            "whatever their number (readers attached to it keep reading it)"),
    Setting("WH_DBT_PRESTART", FLAG, "true",
            "make run: start the transform's dbt process ahead, so that dbt imports on the "
            "other core while Airflow starts (docs/decisions.md 90)"),
    Setting("WH_SUSPICIOUS_CHANGE_SHARE", SHARE, "0.05",
            "a new release whose totals move more than this share against the previous one is "
            "held as suspicious until accepted (readmit FILE --accept-suspicious)"),
    # Set by the pipeline for its own subprocesses.
    Setting("WH_RUN_OWNER_PID", COUNT, None,
            "the make-run process that holds the warehouse (its lease ends with it)",
            internal=True),
    Setting("WH_BUILD_DB", PATH, None, "the build database dbt writes (dbt's profile)",
            internal=True),
    Setting("WH_DBT_DUCKDB_MEMORY_LIMIT", TEXT, None,
            "WH_DUCKDB_MEMORY_LIMIT resolved for dbt's profile (e.g. 983MiB)", internal=True),
    Setting("WH_DBT_DUCKDB_TEMP_DIR", PATH, None,
            "dbt's own spill folder under WH_DUCKDB_TEMP_DIR (dbt's profile)", internal=True),
)


def declared() -> tuple[Setting, ...]:
    """Every setting: the shared ones, then each source folder's (``ingest.catalog``). A name
    or an attribute declared twice is refused (one source would read another's value)."""
    from ingest import catalog
    every = SHARED + catalog.settings()
    for what, key in (("variable", lambda s: s.name), ("attribute", lambda s: s.key)):
        seen: set[str] = set()
        for setting in every:
            if key(setting) in seen:
                raise SettingError(f"{what} {key(setting)!r} is declared twice (ingest/config.py "
                                   "SHARED and the source folders' SETTINGS)")
            seen.add(key(setting))
    return every


def undeclared(environ: Mapping[str, str] | None = None) -> list[str]:
    """``WH_*`` variables set in the environment that no setting declares (a typo reads as the
    default, silently, unless someone says so)."""
    environ = os.environ if environ is None else environ
    names = {s.name for s in declared()}
    return sorted(n for n in environ if n.startswith("WH_") and n not in names
                  and not n.startswith(NOT_SETTINGS))


class Settings:
    """Resolved configuration (paths absolute): one attribute per setting (``Setting.key``)."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self.__dict__.update(values)

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(f"no setting {name!r}: settings are declared in ingest/config.py "
                             "(SHARED) and in each source folder's SETTINGS")

    def __repr__(self) -> str:
        return f"Settings({self.__dict__!r})"


LOCAL_DATA = ("WH_LANDING_DIR", "WH_WAREHOUSE", "WH_RUNS_DIR", "WH_QUALITY_DB", "WH_REPORTS_DIR")
"""Where the data lives on local files. With WH_STORAGE_URL set they are always in the task's
scratch space (which it removes): set by hand they would keep data on a worker's disk."""


def ignored_with_storage(environ: Mapping[str, str] | None = None) -> list[str]:
    """The LOCAL_DATA variables set although WH_STORAGE_URL is (they are ignored)."""
    environ = os.environ if environ is None else environ
    if not environ.get("WH_STORAGE_URL", "").strip():
        return []
    return [n for n in LOCAL_DATA if environ.get(n, "").strip()]


def resolve(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    environ = os.environ if environ is None else environ
    if ignored_with_storage(environ):
        environ = {k: v for k, v in environ.items() if k not in LOCAL_DATA}
    values: dict[str, Any] = {}
    for setting in declared():
        values[setting.key] = setting.read(environ, values)
    if values.get("storage_url") and not environ.get("AWS_ENDPOINT_URL", "").strip():
        raise SettingError(f"WH_STORAGE_URL={values['storage_url']!r} needs AWS_ENDPOINT_URL, the "
                           "S3 endpoint (e.g. http://127.0.0.1:8333), which is not set")
    return values


def settings() -> Settings:
    """Read the configuration from the environment (every call: tests and runners change it)."""
    return Settings(resolve())


def value(name: str) -> Any:
    """One setting by variable name (for code that needs only that one)."""
    setting = next((s for s in declared() if s.name == name), None)
    if setting is None:
        raise KeyError(f"{name} is not declared (ingest/config.py SHARED or a source's SETTINGS)")
    return settings().__dict__[setting.key]


def limit(name: str, default: float, unit: str, zero_ok: bool = False) -> float:
    """A bound from ``name``, kept for callers outside the declared settings (bench): a finite
    number above zero (or zero, with ``zero_ok``); anything else fails naming the variable."""
    kind = (Kind(unit, f"a number of {unit}, zero or more", _not_negative) if zero_ok
            else Kind(unit, f"a number of {unit}, more than zero", _positive))
    return Setting(name, kind, f"{default:g}", "").read(os.environ, {})


def listing(environ: Mapping[str, str] | None = None, everything: bool = False) -> str:
    """The settings as a user reads them: name, type, default, value now, what it does; the
    shared ones first, then each source folder's."""
    import textwrap

    from ingest import catalog
    environ = os.environ if environ is None else environ
    lines = []
    try:
        resolve(environ)
    except SettingError as err:
        lines.append(f"ERROR {err}\n")
    for name in undeclared(environ):
        lines.append(f"WARNING {name} is set but no setting has that name (a typo?)")
    source_settings = set(catalog.settings())
    groups = [("Shared", [s for s in SHARED])]
    for folder in catalog.folders():
        own = [s for s in catalog.settings() if s in folder.settings
               or any(s.name == f"WH_ALLOWED_HOSTS_{spec.name.upper()}" for spec in folder.specs)]
        groups.append((f"Source folder {folder.package.rsplit('.', 1)[-1]}", own))
    assert {s for _, group in groups for s in group} >= source_settings
    for title, group in groups:
        shown = [s for s in group if everything or not s.internal]
        if not shown:
            continue
        lines.append(f"{title}:")
        for s in shown:
            now = environ.get(s.name, "").strip()
            lines.append(f"  {s.name}  [{s.kind.name}]  default {s.default_text()}"
                         + (f"  = {now}" if now else ""))
            lines.append(textwrap.fill(s.description, 96, initial_indent="      ",
                                       subsequent_indent="      "))
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def export_resolved(env: dict[str, str] | None = None) -> dict[str, str]:
    """Write the resolved paths back as absolute paths, so subprocesses (dbt, Airflow tasks)
    see the same files whatever their working directory; every other setting they inherit as
    it is (and validate the same way)."""
    env = os.environ if env is None else env
    values = resolve(os.environ)  # from this process's settings, written into ``env``
    for s in declared():
        if s.kind is PATH and not s.internal and values[s.key] is not None:
            if values["storage_url"] and (s.name in LOCAL_DATA or (
                    s.name == "WH_DUCKDB_TEMP_DIR" and not os.environ.get(s.name, "").strip())):
                continue  # in scratch space, each process its own
            env[s.name] = str(values[s.key])
    return env
