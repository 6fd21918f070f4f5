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


ITEMS = [("Central Mediterranean Route", 66_317.0), ("Western Balkan Route", 21_520.0)]


@pytest.mark.parametrize("content", ["null", "{}", "[]", '"<svg/>"', '{"wide": 1}',
                                     '{"wide": "<svg/>"}', "", '{"wide": "<svg'])
def test_a_damaged_or_foreign_entry_is_drawn_again(wh_env, content):
    """An entry is read back only when it holds a drawing per width; anything else (a file
    another tool left, a half-written or damaged one) is a miss, not the report's charts."""
    first = charts.bar_chart(ITEMS, "Detections by route", "Detections")
    [entry] = charts._cache_dir().glob("*.json")
    entry.write_text(content, encoding="utf-8")
    again = charts.bar_chart(ITEMS, "Detections by route", "Detections")
    assert again == first, (f"a cache entry holding {content!r} was returned as the chart's "
                            f"drawings: {str(again)[:80]!r}")
    assert json.loads(entry.read_text()) == first, "the damaged entry was not replaced"


def test_a_cache_that_cannot_be_written_does_not_stop_the_drawing(wh_env):
    """The cache is a saving, never a condition of the report: a `.charts` that is not a
    folder (or a full or read-only disk) leaves the chart drawn and the report written."""
    folder = charts._cache_dir()
    folder.parent.mkdir(parents=True, exist_ok=True)
    folder.write_text("not a folder", encoding="utf-8")
    drawings = charts.bar_chart(ITEMS, "Detections by route", "Detections")
    assert set(drawings) == set(charts.WIDTHS), "no drawings when the cache cannot be written"
    assert folder.read_text() == "not a folder", "the file in the cache's place was changed"


def test_entries_gone_or_foreign_while_pruning_do_not_stop_the_drawing(wh_env, monkeypatch):
    """Two reports writing the cache at once prune it at once: an entry listed by one may be
    gone (removed by the other) before it is looked at; a folder named like an entry cannot be
    unlinked. Neither stops a drawing."""
    monkeypatch.setattr(charts, "CACHE_KEPT", 1)
    charts.bar_chart(ITEMS, "Detections by route", "Detections")
    folder = charts._cache_dir()
    (folder / "gone.json").symlink_to(folder / "removed-by-another-report.json")
    (folder / "a-folder.json").mkdir()
    drawings = charts.bar_chart(ITEMS[:1], "Detections by route", "Detections")
    assert set(drawings) == set(charts.WIDTHS), "no drawings"
    assert len([p for p in folder.glob("*.json") if p.is_file()]) == 1, (
        "the newest entry only should be kept")
