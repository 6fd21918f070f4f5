"""The report's drawings are kept by a hash of the chart's arguments, the module's code and the
drawing libraries' versions (pipeline/charts.py, decision 88): a report with the same chart reads
them back instead of starting vl-convert again; another argument draws anew."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from pipeline import charts


def test_the_same_chart_is_read_back_and_another_one_drawn(wh_env, monkeypatch):
    items = [("Central Mediterranean Route", 66_317.0), ("Western Balkan Route", 21_520.0)]
    first = charts.bar_chart(items, "Detections by route", "Detections")
    assert set(first) == set(charts.WIDTHS) and all(
        svg.startswith("<svg") for svg in first.values()), f"not two drawings: {first.keys()}"
    kept = sorted((charts._cache_dir()).glob("*.json"))
    assert len(kept) == 1, f"one chart drawn, {len(kept)} kept in {charts._cache_dir()}"
    assert json.loads(kept[0].read_text()) == first

    def no_drawing(*_args, **_kwargs):
        raise AssertionError("vl-convert was asked to draw a chart the cache holds")

    monkeypatch.setattr(charts, "to_svg", no_drawing)
    assert charts.bar_chart(items, "Detections by route", "Detections") == first
    frame = pd.DataFrame({"series": ["a", "a"], "month": ["2025-01-01", "2025-02-01"],
                          "value": [1.0, 2.0]})
    # A chart not drawn before (another value, another kind) is drawn.
    for draw in (lambda: charts.bar_chart(items[:1], "Detections by route", "Detections"),
                 lambda: charts.line_chart(frame, "Detections by month", "Detections")):
        with pytest.raises(AssertionError, match="vl-convert was asked"):
            draw()


def test_the_cache_keeps_the_newest_drawings_only(wh_env, monkeypatch):
    monkeypatch.setattr(charts, "CACHE_KEPT", 2)
    for n in range(4):
        charts.bar_chart([("Route", float(n + 1))], "Detections by route", "Detections")
    assert len(list(charts._cache_dir().glob("*.json"))) == 2, (
        "the chart cache kept more drawings than CACHE_KEPT")
