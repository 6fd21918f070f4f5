"""Charts of the quality report: altair (Vega-Lite) charts rendered to SVG offline by
vl-convert (a bundled JavaScript engine, no browser, no network), put inline in the page. The
page keeps no script and fetches nothing, so it renders the same offline, in a browser, an
e-mail client or a PDF printer.

Each chart is drawn twice, for a wide page and for a phone (``WIDTHS``); the page shows one by
its width. Axis ticks are Vega's round steps (1, 2 or 5 x 10^n); counts read "50k", money
"EUR 300bn" / "EUR 45m" (``money``, the same words as the page's text), percentages "20%". The
title and subtitle of a chart are the page's (HTML, so they wrap), not drawn in the SVG.

A chart's drawings are a function of its arguments, this module's code and the versions of
altair and vl-convert: they are kept under ``<WH_REPORTS_DIR>/.charts`` by a hash of those, and
a later report with the same chart (a run with nothing new, or the charts of the sources a new
release did not touch) reads them instead of starting vl-convert's engine (about 0.5 s) and
drawing again (50-110 ms a drawing); altair and vl-convert are imported only to draw. The
newest ``CACHE_KEPT`` entries are kept (decision 88)."""
from __future__ import annotations

import functools
import hashlib
import json
import os
import logging
import re
import stat
import tempfile
import time
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

import pandas as pd

log = logging.getLogger(__name__)

WIDTHS = {"wide": 640, "narrow": 330}
"""Plot width in pixels of the two renderings of every chart (the page scales either down)."""
FONT = "Helvetica, Arial, sans-serif"
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf")
RENDER_SECONDS: list[float] = []
"""Seconds each ``to_svg`` took in this process (measured for docs/decisions.md 84)."""

COUNT_AXIS = "format(datum.value, '~s')"
PERCENT_AXIS = "format(datum.value, '~r') + '%'"
MONEY_AXIS = ("abs(datum.value) >= 1e9 ? 'EUR ' + format(datum.value / 1e9, '~r') + 'bn' : "
              "abs(datum.value) >= 1e6 ? 'EUR ' + format(datum.value / 1e6, '~r') + 'm' : "
              "datum.value == 0 ? '0' : 'EUR ' + format(datum.value, ',')")


def money(value: float | None) -> str:
    """EUR 300bn, EUR 1.2bn, EUR 806.3m, EUR 45m, EUR 12,500: the page's one way to say money."""
    if value is None:
        return "no data"
    size = abs(value)
    if size >= 1e9:
        text, suffix = f"{value / 1e9:,.1f}", "bn"
    elif size >= 1e6:
        text, suffix = f"{value / 1e6:,.1f}", "m"
    else:
        return f"EUR {value:,.0f}"
    return f"EUR {text.removesuffix('.0')}{suffix}"


def count(value: float) -> str:
    if value == int(value):
        return f"{int(value):,}"
    return f"{value:,.1f}"


def percent(value: float, signed: bool = False) -> str:
    return f"{'+' if signed and value > 0 else ''}{value:,.1f}%"


def _config(chart):
    return (chart.configure(font=FONT, background="white")
            .configure_axis(labelFontSize=12, titleFontSize=12, labelColor="#333",
                            titleColor="#333", gridColor="#e6e6e6", tickCount=5)
            .configure_legend(labelFontSize=12, titleFontSize=12, labelLimit=260)
            .configure_view(stroke=None))


def to_svg(chart, description: str) -> str:
    """The chart as one ``<svg>`` element, scaled by the page (viewBox kept, fixed size
    dropped) and described for screen readers."""
    import vl_convert as vlc

    started = time.perf_counter()
    svg = vlc.vegalite_to_svg(_config(chart.properties(description=description)).to_dict())
    RENDER_SECONDS.append(time.perf_counter() - started)
    svg = re.sub(r'^<svg ([^>]*?)width="([\d.]+)" height="([\d.]+)"',
                 lambda m: f'<svg {m[1]}role="img" style="max-width:{m[2]}px" ', svg, count=1)
    return svg


def _bars(frame: pd.DataFrame, width: int, axis: str, value_title: str, domain: list[float],
          reference: float | None = None, signed: bool = False):
    """Horizontal bars, one per row of ``frame`` (label, value, text, aria), in its order;
    each bar's value written beside it."""
    import altair as alt

    height = 22 * len(frame)
    label_limit = 150 if width < 400 else 250
    base = alt.Chart(frame).encode(
        y=alt.Y("label:N", sort=None, title=None, axis=alt.Axis(labelLimit=label_limit)),
        x=alt.X("value:Q", title=value_title,
                axis=alt.Axis(labelExpr=axis, tickCount=4 if width < 400 else 8),
                scale=alt.Scale(domain=domain, nice=True)))
    colour = (alt.condition("datum.value < 0", alt.value("#d62728"), alt.value("#1f77b4"))
              if signed else alt.value("#1f77b4"))
    bars = base.mark_bar(height=14).encode(color=colour, description="aria:N")
    text = base.mark_text(align="left", dx=4, fontSize=11, color="#222").encode(
        text="text:N", x=alt.X("end:Q"))
    layers = [bars, text]
    if reference is not None:
        layers.append(alt.Chart(pd.DataFrame({"ref": [reference]})).mark_rule(
            strokeDash=[4, 3], color="#555").encode(x="ref:Q"))
    return alt.layer(*layers).properties(width=width, height=height)


CACHE_FOLDER = ".charts"
CACHE_KEPT = 200
"""Drawings kept in ``<WH_REPORTS_DIR>/.charts`` (the newest by use; a report draws ten)."""


@functools.cache
def _code_key() -> str:
    """This module's code and the drawing libraries' versions: what else a drawing depends on."""
    digest = hashlib.sha256(Path(__file__).read_bytes())
    for package in ("altair", "vl-convert-python", "vega-datasets"):
        try:
            digest.update(f"{package}={metadata.version(package)}".encode())
        except metadata.PackageNotFoundError:
            pass
    return digest.hexdigest()


def _plain(value):
    if isinstance(value, pd.DataFrame):
        return {"frame": value.to_json(orient="split", date_format="iso", date_unit="ns")}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def _cache_dir() -> Path | None:
    from ingest.config import settings

    try:
        return settings().reports_dir / CACHE_FOLDER
    except Exception:  # noqa: BLE001 - no settings (a chart drawn outside a run): no cache
        return None


def _read(path: Path) -> dict[str, str] | None:
    """The drawings an entry holds (one SVG per width), or None: missing, half-written, damaged
    or not an entry of this cache (a file another tool left) is a miss, drawn again."""
    try:
        drawings = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if (not isinstance(drawings, dict) or set(drawings) != set(WIDTHS)
            or not all(isinstance(svg, str) and svg.startswith("<svg")
                       and svg.rstrip().endswith("</svg>") for svg in drawings.values())):
        return None
    try:
        os.utime(path)  # newest by use (_prune)
    except OSError:
        pass  # a read-only cache still serves
    return drawings


def _keep(folder: Path, path: Path, drawings: dict[str, str]) -> None:
    """Write an entry (through a staged file of its own and a rename) and prune. The cache is a
    saving, never a condition of the report: a folder that cannot be written (read-only, full,
    a file in its place) leaves the drawings drawn and is logged."""
    staged = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=folder)
        staged = Path(name)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(json.dumps(drawings))
        os.replace(staged, path)
        staged = None
        _prune(folder)
    except OSError as err:
        log.warning("chart cache %s not written (%s: %s); the chart is drawn each time",
                    folder, type(err).__name__, err)
    finally:
        if staged is not None:
            staged.unlink(missing_ok=True)


def _kept(draw):
    """``draw``'s drawings read from the cache when the same chart was drawn before."""
    @functools.wraps(draw)
    def cached(*args, **kwargs) -> dict[str, str]:
        folder = _cache_dir()
        if folder is None:
            return draw(*args, **kwargs)
        key = hashlib.sha256(json.dumps(
            [draw.__name__, _code_key(), _plain(list(args)), _plain(kwargs)],
            sort_keys=True, default=str).encode()).hexdigest()
        path = folder / f"{key}.json"
        if (drawings := _read(path)) is not None:
            return drawings
        drawings = draw(*args, **kwargs)
        _keep(folder, path, drawings)
        return drawings
    return cached


STALE_PART_S = 3600
"""A staged entry this old belongs to a report process that died before renaming it."""


def _prune(folder: Path) -> None:
    """Keep the newest ``CACHE_KEPT`` entries. Another report may prune at the same time: an
    entry gone before it is looked at, or one that cannot be removed, is passed over."""
    entries: list[tuple[float, Path]] = []
    now = time.time()
    for entry in folder.iterdir():
        try:
            info = entry.lstat()
        except OSError:
            continue  # removed by another report meanwhile
        if not stat.S_ISREG(info.st_mode):
            continue  # not an entry of this cache
        if entry.suffix == ".json":
            entries.append((info.st_mtime, entry))
        elif entry.name.endswith(".part") and now - info.st_mtime > STALE_PART_S:
            entry.unlink(missing_ok=True)
    entries.sort(key=lambda e: e[0], reverse=True)
    for _, old in entries[CACHE_KEPT:]:
        try:
            old.unlink()
        except OSError:
            pass


@_kept
def bar_chart(items: Sequence[tuple[str, float]], description: str, value_title: str,
              kind: str = "count", reference: float | None = None,
              signed: bool = False) -> dict[str, str]:
    """Horizontal bars (label, value) in the order given, with each value written beside its
    bar; ``kind`` is "count", "percent" or "money"; ``reference`` draws a dashed line (100%).
    Returns the SVG per width (``WIDTHS``)."""
    fmt = {"count": count, "money": money,
           "percent": lambda v: percent(v, signed)}[kind]
    axis = {"count": COUNT_AXIS, "money": MONEY_AXIS, "percent": PERCENT_AXIS}[kind]
    values = [v for _, v in items]
    span = max([abs(v) for v in values] + [reference or 0, 1e-9])
    frame = pd.DataFrame({
        "label": [label for label, _ in items], "value": values,
        "text": [fmt(v) for v in values],
        "aria": [f"{label}: {fmt(v)}" for label, v in items],
        # Text of a negative bar sits at zero's right; of a positive one, at the bar's end.
        "end": [max(v, 0) for v in values]})
    out = {}
    # Room for the value's text after the longest bar: a domain a fifth wider.
    domain = [min(min(values), 0), span * 1.2]
    for name, width in WIDTHS.items():
        out[name] = to_svg(_bars(frame, width, axis, value_title, domain, reference, signed),
                           description)
    return out


@_kept
def line_chart(frame: pd.DataFrame, description: str, value_title: str) -> dict[str, str]:
    """One line per series over months: ``frame`` has columns series, month (a date) and
    value (missing months break the line). Returns the SVG per width (``WIDTHS``)."""
    import altair as alt

    frame = frame.assign(month=pd.to_datetime(frame["month"]))
    out = {}
    for name, width in WIDTHS.items():
        narrow = width < 400
        legend = alt.Legend(title=None, orient="bottom" if narrow else "right",
                            labelLimit=300, **({"columns": 1} if narrow else {}))
        chart = alt.Chart(frame).mark_line(strokeWidth=1.6).encode(
            x=alt.X("month:T", title=None,
                    axis=alt.Axis(format="%Y", tickCount=6 if narrow else 10, labelAngle=0)),
            y=alt.Y("value:Q", title=value_title, axis=alt.Axis(labelExpr=COUNT_AXIS)),
            color=alt.Color("series:N", sort=list(dict.fromkeys(frame["series"])),
                            legend=legend, scale=alt.Scale(range=list(PALETTE))),
        ).properties(width=width, height=240 if narrow else 280)
        out[name] = to_svg(chart, description)
    return out


@_kept
def grouped_bar_chart(frame: pd.DataFrame, description: str, value_title: str,
                      group_order: Sequence[str], bar_order: Sequence[str]) -> dict[str, str]:
    """Bars grouped: the bars of one ``group`` together (one row each, "group, bar"),
    coloured by ``bar``, groups in ``group_order``, bars in ``bar_order``; ``frame`` has
    columns group, bar, value (EUR). Each bar's amount is written beside it. Returns the SVG
    per width (``WIDTHS``)."""
    import altair as alt

    frame = frame.assign(
        g=[list(group_order).index(g) for g in frame["group"]],
        b=[list(bar_order).index(b) for b in frame["bar"]]).sort_values(["g", "b"])
    frame = frame.assign(label=[f"{g}, {b}" for g, b in zip(frame["group"], frame["bar"])],
                         text=[money(v) for v in frame["value"]],
                         aria=[f"{g}, {b}: {money(v)}" for g, b, v in
                               zip(frame["group"], frame["bar"], frame["value"])],
                         end=frame["value"])
    domain = [0, max(float(frame["value"].max()), 1.0) * 1.25]
    out = {}
    for name, width in WIDTHS.items():
        narrow = width < 400
        base = alt.Chart(frame).encode(
            y=alt.Y("label:N", sort=list(frame["label"]), title=None,
                    axis=alt.Axis(labelLimit=150 if narrow else 260)),
            x=alt.X("value:Q", title=value_title, scale=alt.Scale(domain=domain, nice=True),
                    axis=alt.Axis(labelExpr=MONEY_AXIS, tickCount=3 if narrow else 5)))
        bars = base.mark_bar(height=14).encode(
            color=alt.Color("bar:N", sort=list(bar_order), title=None,
                            scale=alt.Scale(range=list(PALETTE)), legend=None),
            description="aria:N")
        text = base.mark_text(align="left", dx=4, fontSize=11, color="#222").encode(
            text="text:N")
        chart = alt.layer(bars, text).properties(width=width, height=22 * len(frame))
        out[name] = to_svg(chart, description)
    return out
