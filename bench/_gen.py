"""Data for ``bench.speed``: the recorded Frontex and Eurostat files at N times their size, in
their real formats, so that the measurements go through the project's own parsers.

- Frontex, N x: one workbook in the recorded layout (sheet ``Detections_of_IBC``: ``Route |
  Border type or inland | Nationality | JAN2009 ...``; sheet ``Notes``: "Source: FRAN data as of
  03JUN25"), whose data rows are the recorded rows repeated N times. Copy k > 0 suffixes the
  nationality label (``Bangladesh (copy 2)``) so that the grain route x border type x nationality
  x month stays unique. The raw load and the raw audit accept such labels (the raw suite does not
  check nationalities); dbt would not (``assert_every_frontex_nationality_is_mapped``), so these
  workbooks are for the land, load and audit measures only. Below 1x the first rows are kept.
- Frontex, N releases (for the whole pipeline at N x): the recorded rows as N workbooks, one per
  release (release dates one day apart from the recorded 03JUN25 on, counts slightly changed), so
  every nationality maps through the seed and dbt builds: an archive of N releases is how
  Frontex data actually grows.
- Eurostat, N x: every recorded Eurostat file (legacy exports, SDMX-CSV 1.0 and 2.0), parsed by
  ``ingest.sources.eurostat.formats`` and written back as SDMX-CSV 1.0 with codes (what the
  dissemination API serves), its rows repeated N times: copy k shifts every year back by k times
  the span of years of all the recorded files (forward past the last year once 1000 is reached:
  periods must keep four digits). Keys stay unique within each file, and the files of a dataset
  overlap, agree and add up (aggregates and their members) exactly as the recorded ones do, so
  dbt's cross-file tests pass.

Generated once per scale under ``bench/.data/`` (git-ignored) and reused while ``VERSION`` and
the recorded files are the same.
"""
from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import shutil
import time
from pathlib import Path

from ingest.config import REPO_ROOT

VERSION = "2"
"""Bump when the generated data changes: cached data of another version is generated again."""
PIPELINE_VERSION = "p2"
"""The same, for the pipeline snapshots only."""
DATA_DIR = REPO_ROOT / "bench" / ".data"
FRONTEX_SHEET = "Detections_of_IBC"
RECORDED_RELEASE = "2025-06-03"


def recorded_dir() -> Path:
    """The recorded files: ``WH_SNAPSHOT_DIR`` when set (as the tests read them), else
    ``../shared/data`` beside the repository."""
    configured = os.environ.get("WH_SNAPSHOT_DIR")
    return Path(configured).resolve() if configured else REPO_ROOT.parent / "shared" / "data"


def scale_label(scale: float) -> str:
    return f"{scale:g}x"


def _fingerprint(recorded: Path, parts: list[str]) -> str:
    digest = hashlib.sha256(VERSION.encode())
    for part in parts:
        for f in sorted((recorded / part).glob("*")):
            if f.is_file():
                stat = f.stat()
                digest.update(f"{f.name}:{stat.st_size}:{int(stat.st_mtime)}".encode())
    return digest.hexdigest()[:16]


def _cached(folder: Path, stamp: str, build) -> tuple[Path, dict]:
    """``folder`` built by ``build(folder) -> info`` unless it holds a build with ``stamp``."""
    marker = folder / ".generated.json"
    if marker.exists():
        info = json.loads(marker.read_text())
        if info.get("stamp") == stamp:
            return folder, info
    if folder.exists():
        shutil.rmtree(folder)
    staging = folder.with_name(folder.name + ".part")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    started = time.perf_counter()
    info = build(staging)
    info.update(stamp=stamp, seconds=round(time.perf_counter() - started, 2))
    (staging / ".generated.json").write_text(json.dumps(info, indent=2))
    staging.rename(folder)
    return folder, info


# --- Frontex -------------------------------------------------------------------------------------

def recorded_frontex(recorded: Path) -> tuple[list, list[tuple]]:
    """The header and the data rows of the recorded workbook's data sheet."""
    import openpyxl

    wb = openpyxl.load_workbook(recorded / "frontex" / "ibc.xlsx", read_only=True, data_only=True)
    try:
        rows = [r for r in wb[FRONTEX_SHEET].iter_rows(values_only=True)]
    finally:
        wb.close()
    header_at = next(i for i, r in enumerate(rows) if r and r[0] == "Route")
    header = list(rows[header_at])
    data = [r for r in rows[header_at + 1:]
            if r and r[0] is not None and any(v is not None for v in r[3:])]
    return header, data


def write_workbook(path: Path, header: list, rows, release) -> None:
    """One workbook in the recorded layout; the Notes sheet dates it (FRAN data as of ...)."""
    import openpyxl

    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet(FRONTEX_SHEET)
    ws.append(header)
    for row in rows:
        ws.append(row)
    notes = wb.create_sheet("Notes")
    notes.append(["Definition: benchmark data generated by bench/_gen.py from the recorded "
                  "Frontex workbook."])
    notes.append([None])
    notes.append([f"Source: FRAN data as of {release:%d}{release.strftime('%b').upper()}"
                  f"{release:%y}"])
    wb.save(path)


def frontex_rows(header: list, data: list[tuple], scale: float):
    """The recorded rows at ``scale``: repeated with suffixed nationalities above 1x, the first
    ones below."""
    if scale < 1:
        yield from data[:max(1, math.ceil(len(data) * scale))]
        return
    copies = round(scale)
    for k in range(copies):
        for row in data:
            yield row if k == 0 else (row[0], row[1], f"{row[2]} (copy {k + 1})", *row[3:])


def _cells(data: list[tuple]) -> int:
    return sum(1 for row in data for v in row[3:] if v is not None)


def frontex_workbook(folder: Path, scale: float, recorded: Path) -> dict:
    from datetime import date

    header, data = recorded_frontex(recorded)
    target = folder / "frontex"
    target.mkdir(parents=True)
    path = target / f"ibc_{scale_label(scale)}.xlsx"
    write_workbook(path, header, frontex_rows(header, data, scale),
                   date.fromisoformat(RECORDED_RELEASE))
    if scale < 1:
        cells = _cells(data[:max(1, math.ceil(len(data) * scale))])
    else:
        cells = _cells(data) * round(scale)
    return {"frontex_file": str(path.relative_to(folder)), "frontex_rows": cells,
            "frontex_bytes": path.stat().st_size}


def release_rows(data: list[tuple], i: int) -> list[tuple]:
    """The rows of generated release ``i``: the recorded ones, the first month + ``i``."""
    return data if i == 0 else [
        (*r[:3], (r[3] + i) if isinstance(r[3], int) else r[3], *r[4:]) for r in data]


def frontex_releases(folder: Path, releases: int, recorded: Path) -> dict:
    """``releases`` workbooks of the recorded rows, release dates one day apart (the recorded
    release first, then later ones: a release must not predate its last month), counts of
    release i changed by +i on the first month so each file differs."""
    from datetime import date, timedelta

    header, data = recorded_frontex(recorded)
    target = folder / "frontex"
    target.mkdir(parents=True)
    first = date.fromisoformat(RECORDED_RELEASE)
    for i in range(releases):
        release = first + timedelta(days=i)
        write_workbook(target / f"ibc_{release:%Y_%m_%d}.xlsx", header, release_rows(data, i),
                       release)
    return {"frontex_releases": releases, "frontex_rows": _cells(data) * releases}


def _month_header(day) -> str:
    return f"{day.strftime('%b').upper()}{day:%Y}"


def next_release(releases: int, recorded: Path) -> tuple[str, list, list[tuple], object]:
    """The release that follows ``releases`` generated ones (``frontex_releases``), as Frontex
    publishes a month later: dated 31 days after the last of them, with the months up to the
    one before its own month added (each new month a copy of the recorded last month, APR2025),
    and its first month + ``releases`` like every generated release. Returns the file name,
    header, rows and release date."""
    from datetime import date, timedelta

    header, data = recorded_frontex(recorded)
    last = date.fromisoformat(RECORDED_RELEASE) + timedelta(days=max(1, releases) - 1)
    release = last + timedelta(days=31)
    months, day = [], date(2025, 5, 1)  # the month after the recorded last one (APR2025)
    assert header[-1] == "APR2025", header[-1]
    while (day.year, day.month) < (release.year, release.month):
        months.append(_month_header(day))
        day = date(day.year + day.month // 12, day.month % 12 + 1, 1)
    rows = [(*r, *([r[-1]] * len(months))) for r in release_rows(data, max(1, releases))]
    return f"ibc_{release:%Y_%m_%d}.xlsx", [*header, *months], rows, release


def new_release_snapshot(snapshot: Path, releases: int, recorded: Path | None = None,
                         data_dir: Path = DATA_DIR) -> tuple[Path, dict]:
    """``snapshot`` (the recorded one at 1x, a pipeline snapshot above) with ONE more Frontex
    release (``next_release``): every file of ``snapshot`` linked (so its URLs, the resolved
    paths, are the ones already landed), the new workbook beside them. For the bench's
    new-release run: a first run on ``snapshot``, then a run on this folder."""
    recorded = recorded or recorded_dir()
    stamp = (_fingerprint(recorded, ["frontex"]) + PIPELINE_VERSION
             + f":{snapshot.resolve()}:{releases}")

    def build(folder: Path) -> dict:
        for part in sorted(snapshot.iterdir()):
            if part.name.startswith("."):
                continue
            if part.name == "frontex":
                (folder / "frontex").mkdir()
                for f in sorted(part.iterdir()):
                    os.symlink(f.resolve(), folder / "frontex" / f.name)
            else:
                os.symlink(part.resolve(), folder / part.name)
        name, header, rows, release = next_release(releases, recorded)
        write_workbook(folder / "frontex" / name, header, rows, release)
        cells = sum(1 for row in rows for v in row[3:] if v is not None)
        return {"release": release.isoformat(), "file": name, "frontex_rows": cells,
                "months": header[3:][-3:]}

    key = hashlib.sha256(str(snapshot.resolve()).encode()).hexdigest()[:8]
    return _cached(data_dir / f"next_release_{releases}_{key}", stamp, build)


# --- Eurostat ------------------------------------------------------------------------------------

SDMX1_TAIL = ("TIME_PERIOD", "OBS_VALUE", "OBS_FLAG", "CONF_STATUS")


def _recorded_eurostat(recorded: Path) -> list[tuple[str, object]]:
    """(file name, parsed observations) of every recorded Eurostat file, by the project's
    parser."""
    from ingest.sources.eurostat.formats import parse_observations

    files = sorted(f for sub in ("legacy", "sdmx") for f in (recorded / "eurostat" / sub).glob("*")
                   if f.is_file() and f.name.endswith(".csv"))
    return [(f.name, parse_observations(f.read_bytes(), f.name)) for f in files]


def _shift(period: str, years: int) -> str:
    return f"{int(period[:4]) + years:04d}{period[4:]}"


def _year_shifts(first: int, last: int, copies: int) -> list[int]:
    span = last - first + 1
    shifts, k_back = [], 0
    for k in range(copies):
        back = -k * span
        if first + back >= 1000:
            shifts.append(back)
            k_back = k
        else:
            shifts.append((k - k_back) * span)
    return shifts


def _text(value) -> str:
    import pandas as pd

    return "" if value is None or pd.isna(value) else str(value)


def _number(value) -> str:
    if value is None or value != value:
        return ""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def write_sdmx1(path: Path, parsed, scale: float, years: tuple[int, int]) -> int:
    """The observations of one parsed file as SDMX-CSV 1.0 with codes, at ``scale``; ``years``:
    the first and last year of every file, whose span is the shift between copies."""
    frame = parsed.rows
    if scale < 1:
        frame = frame.head(max(1, math.ceil(len(frame) * scale)))
    dims = json.loads(frame["dimensions"].iloc[0]) if len(frame) else {}
    extra = sorted(dims)
    columns = ["DATAFLOW", "LAST UPDATE", "freq", *extra, "citizen", "geo", *SDMX1_TAIL]
    dataflow = f"ESTAT:{parsed.dataset.upper()}(1.0)"
    stamp = (parsed.last_update or parsed.release_date)
    stamp_text = f"{stamp:%d/%m/%y %H:%M:%S}" if stamp is not None else ""
    copies = 1 if scale < 1 else round(scale)
    shifts = _year_shifts(*years, copies)
    records = list(zip(frame["freq"], frame["dimensions"], frame["citizen"], frame["geo"],
                       frame["time_period"], frame["obs_value"], frame["obs_flag"],
                       frame["conf_status"]))
    decoded = {d: json.loads(d) for d in set(frame["dimensions"])}
    rows = 0
    with path.open("w", encoding="utf-8", newline="") as fh:
        out = csv.writer(fh, lineterminator="\n")
        out.writerow(columns)
        for shift in shifts:
            for freq, dimensions, citizen, geo, period, value, flag, conf in records:
                d = decoded[dimensions]
                out.writerow([dataflow, stamp_text, freq, *(d.get(e, "") for e in extra),
                              _text(citizen), _text(geo), _shift(period, shift),
                              _number(value), _text(flag), _text(conf)])
                rows += 1
    return rows


def eurostat_files(folder: Path, scale: float, recorded: Path) -> dict:
    target = folder / "eurostat" / "sdmx"
    target.mkdir(parents=True)
    rows, files = 0, []
    recorded_files = _recorded_eurostat(recorded)
    periods = [int(p[:4]) for _, parsed in recorded_files for p in parsed.rows["time_period"]]
    years = (min(periods), max(periods))
    for name, parsed in recorded_files:
        # One output per recorded file: the dataset is named by the DATAFLOW column; the file
        # name keeps the recorded one (dataset first, so legacy names still name it too).
        out = target / f"{Path(name).stem}_{scale_label(scale)}.csv"
        rows += write_sdmx1(out, parsed, scale, years)
        files.append(out.name)
    return {"eurostat_files": files, "eurostat_rows": rows,
            "eurostat_bytes": sum((target / f).stat().st_size for f in files)}


# --- what bench.speed asks for -------------------------------------------------------------------

def scale_snapshot(scale: float, recorded: Path | None = None, log=print,
                   data_dir: Path = DATA_DIR) -> tuple[Path, dict]:
    """A snapshot folder (``frontex/``, ``eurostat/sdmx/``) at ``scale`` for the land, load and
    audit measures."""
    recorded = recorded or recorded_dir()
    stamp = _fingerprint(recorded, ["frontex", "eurostat/legacy", "eurostat/sdmx"])

    def build(folder: Path) -> dict:
        log(f"  generating the {scale_label(scale)} data in {folder.parent} ...")
        info = {"scale": scale, **frontex_workbook(folder, scale, recorded),
                **eurostat_files(folder, scale, recorded)}
        return info

    return _cached(data_dir / f"snapshot_{scale_label(scale)}", stamp, build)


def pipeline_snapshot(scale: float, recorded: Path | None = None, log=print,
                      data_dir: Path = DATA_DIR) -> tuple[Path, dict]:
    """A whole snapshot at ``scale`` for ``pipeline.run``: Frontex as ``scale`` releases,
    Eurostat at ``scale`` x (the same files as the scale snapshot), the other sources' recorded
    files linked as they are."""
    recorded = recorded or recorded_dir()
    stamp = _fingerprint(recorded, ["frontex", "eurostat/legacy", "eurostat/sdmx", "cohesion",
                                    "registries", "eurostat/published"]) + PIPELINE_VERSION
    scaled, _ = scale_snapshot(scale, recorded, log, data_dir)

    def build(folder: Path) -> dict:
        log(f"  generating the {scale_label(scale)} pipeline snapshot in {folder.parent} ...")
        info = {"scale": scale, **frontex_releases(folder, max(1, round(scale)), recorded)}
        (folder / "eurostat").mkdir()
        os.symlink(scaled / "eurostat" / "sdmx", folder / "eurostat" / "sdmx")
        for part in ("cohesion", "registries", "eurostat/published"):
            if (recorded / part).exists():
                os.symlink(recorded / part, folder / part)
        meta = json.loads((scaled / ".generated.json").read_text())
        info["eurostat_rows"] = meta["eurostat_rows"]
        return info

    return _cached(data_dir / f"pipeline_{scale_label(scale)}", stamp, build)
