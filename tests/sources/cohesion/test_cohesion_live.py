"""Socrata paging against a real HTTP server on 127.0.0.1, serving rows of the recorded
Cohesion Open Data sample in the platform's CSV format: several pages, a short last page, an
empty page, a 5xx in the middle. No row may be lost or doubled. Nothing in ``requests`` is
mocked; the code runs in live mode."""
from __future__ import annotations

import csv
import io
import json

import pytest

from ingest.sources.cohesion import source as cohesion
from ingest.sources.cohesion.source import CohesionSource, dataset_url, page_url, parse_records
from ingest.config import settings
from ingest.errors import DownloadError
from ingest.landing import Landing
from ingest.source import land_new
from tests.replay_server import ReplayServer, Reply

PAGE = 3
CATALOG = "/api/catalog/v1"
UPDATED = 1_697_500_000  # rowsUpdatedAt, seconds since 1970 (2023-10-17)


@pytest.fixture(scope="module")
def recorded(snapshot_dir):
    """The header and the home-affairs rows of the recorded sample, as CSV lines."""
    text = (snapshot_dir / "cohesion" / "hgyj-gyin_sample.csv").read_text(encoding="utf-8")
    rows = list(csv.reader(io.StringIO(text)))
    return rows[0], [r for r in rows[1:] if r[rows[0].index("fund")] in ("BMVI", "ISF")]


def body(header, rows) -> bytes:
    out = io.StringIO()
    csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows([header, *rows])
    return out.getvalue().encode("utf-8")


@pytest.fixture
def server():
    with ReplayServer() as srv:
        yield srv


@pytest.fixture
def live(server, tmp_path, monkeypatch):
    monkeypatch.delenv("WH_SNAPSHOT_DIR", raising=False)
    monkeypatch.setenv("WH_COHESION_URL", server.url(""))
    monkeypatch.setenv("WH_SOCRATA_CATALOG_URL", server.url(CATALOG))
    monkeypatch.setenv("WH_SOCRATA_PAGE_ROWS", str(PAGE))
    monkeypatch.setenv("WH_LANDING_DIR", str(tmp_path / "landing"))
    monkeypatch.setenv("WH_HTTP_BACKOFF_S", "0.01")
    monkeypatch.setenv("WH_HTTP_RETRIES", "3")
    monkeypatch.setenv("WH_HTTP_TIMEOUT_S", "2")
    return server


def relative(url: str) -> str:
    return url.removeprefix(settings().cohesion_url)


def serve(srv, dataset_id, header, rows, updated=UPDATED, extra=None):
    srv.route(f"/api/views/{dataset_id}.json",
              Reply(body=json.dumps({"id": dataset_id, "rowsUpdatedAt": updated}).encode()))
    url = relative(dataset_url(dataset_id))
    offsets = range(0, len(rows) + 1, PAGE)
    for offset in offsets:
        page = rows[offset:offset + PAGE]
        srv.route(relative(page_url(url, PAGE, offset)), *(extra or {}).get(offset, []),
                  Reply(body=body(header, page)))
    return url


def serve_catalog(srv, results=()):
    srv.route(CATALOG, Reply(body=json.dumps({"results": list(results),
                                              "resultSetSize": len(results)}).encode()))


def run():
    return land_new(CohesionSource(), Landing(settings().landing_dir))


def landed_rows(entry):
    content = Landing(settings().landing_dir).file(entry).read_bytes()
    frame, _ = parse_records(content, entry.path, entry.dataset)
    return frame


def test_every_page_is_asked_for_explicitly_and_every_row_lands_once(live, recorded):
    header, rows = recorded
    rows = rows[:8]  # pages of 3, 3 and a short last page of 2
    url = serve(live, "hgyj-gyin", header, rows)
    serve(live, "9qee-iv7c", ["ms", "cci", "fund", "total"], [["EE", "2021EE65AMPR001", "AMIF",
                                                               "1000"]])
    serve_catalog(live)
    entries = {e.dataset: e for e in run()}
    frame = landed_rows(entries["hgyj-gyin"])
    assert len(frame) == 8 and frame["record"].is_unique
    source_rows = [json.loads(r)["cci"] for r in frame["record"]]
    assert source_rows == [r[header.index("cci")] for r in rows]
    asked = [r.query for r in live.requests if r.path == "/resource/hgyj-gyin.csv"]
    assert asked == [relative(page_url(url, PAGE, o)).split("?", 1)[1] for o in (0, 3, 6)]
    assert all("%24order=%3Aid" in q or "$order=:id" in q for q in asked)
    assert all("fund%20in('AMIF','BMVI','ISF')" in q for q in asked)
    assert entries["hgyj-gyin"].version == "2023-10-16T23:46:40+00:00"


def test_a_full_last_page_is_followed_by_an_empty_one(live, recorded):
    header, rows = recorded
    serve(live, "hgyj-gyin", header, rows[:6])  # 3 + 3, then a page with the header only
    serve(live, "9qee-iv7c", ["ms", "cci", "fund", "total"], [["EE", "x", "AMIF", "1"]])
    serve_catalog(live)
    entries = {e.dataset: e for e in run()}
    assert len(landed_rows(entries["hgyj-gyin"])) == 6
    assert live.count("/resource/hgyj-gyin.csv") == 3


def test_an_empty_body_ends_the_paging(live, recorded):
    header, rows = recorded
    url = serve(live, "hgyj-gyin", header, rows[:3])
    live.route(relative(page_url(url, PAGE, 3)), Reply(body=b""))
    serve(live, "9qee-iv7c", ["ms", "cci", "fund", "total"], [["EE", "x", "AMIF", "1"]])
    serve_catalog(live)
    entries = {e.dataset: e for e in run()}
    assert len(landed_rows(entries["hgyj-gyin"])) == 3


def test_a_5xx_in_the_middle_is_retried_without_losing_or_doubling_rows(live, recorded):
    header, rows = recorded
    rows = rows[:8]
    serve(live, "hgyj-gyin", header, rows,
          extra={3: [Reply(status=503), Reply(status=500)]})
    serve(live, "9qee-iv7c", ["ms", "cci", "fund", "total"], [["EE", "x", "AMIF", "1"]])
    serve_catalog(live)
    entries = {e.dataset: e for e in run()}
    frame = landed_rows(entries["hgyj-gyin"])
    assert len(frame) == 8 and frame["record"].is_unique
    offsets = [r.query.rsplit("$offset=", 1)[-1] for r in live.requests
               if r.path == "/resource/hgyj-gyin.csv"]
    assert offsets == ["0", "3", "3", "3", "6"]


def test_a_page_with_other_columns_is_an_error(live, recorded):
    header, rows = recorded
    url = serve(live, "hgyj-gyin", header, rows[:6])
    live.route(relative(page_url(url, PAGE, 3)), Reply(body=body(header[:-1], [r[:-1] for r in
                                                                              rows[3:6]])))
    serve(live, "9qee-iv7c", ["ms", "cci", "fund", "total"], [["EE", "x", "AMIF", "1"]])
    serve_catalog(live)
    with pytest.raises(DownloadError, match="same columns on every page"):
        run()


def test_unchanged_datasets_are_not_downloaded_again(live, recorded):
    header, rows = recorded
    serve(live, "hgyj-gyin", header, rows[:4])
    serve(live, "9qee-iv7c", ["ms", "cci", "fund", "total"], [["EE", "x", "AMIF", "1"]])
    serve_catalog(live)
    assert len(run()) == 2
    pages = live.count("/resource/hgyj-gyin.csv")
    assert run() == []
    assert live.count("/resource/hgyj-gyin.csv") == pages
    serve(live, "hgyj-gyin", header, rows[:5], updated=UPDATED + 86_400)
    [entry] = run()
    assert entry.dataset == "hgyj-gyin" and len(landed_rows(entry)) == 5


def test_payment_datasets_are_found_in_the_catalogue(live, recorded):
    header, rows = recorded
    serve(live, "hgyj-gyin", header, rows[:2])
    serve(live, "9qee-iv7c", ["ms", "cci", "fund", "total"], [["EE", "x", "AMIF", "1"]])
    serve(live, "abcd-1234", ["ms", "cci", "fund", "eu_payments"],
          [["EE", "2021EE65AMPR001", "AMIF", "250"]])
    serve_catalog(live, [
        {"resource": {"id": "abcd-1234", "name": "2021-2027 EU payments by programme",
                      "data_updated_at": "2025-01-31T10:00:00.000Z"}},
        {"resource": {"id": "zzzz-9999", "name": "2014-2020 Finance implementation details"}},
    ])
    entries = {e.dataset: e for e in run()}
    assert set(entries) == {"hgyj-gyin", "9qee-iv7c", "abcd-1234"}
    assert entries["abcd-1234"].version == "2025-01-31T10:00:00.000Z"
    catalog = live.requested(CATALOG)[0]
    assert "only=dataset" in catalog.query and "domains=127.0.0.1" in catalog.query


def test_completeness_of_live_and_replayed_snapshots():
    assert cohesion.completeness("https://cohesiondata.ec.europa.eu/resource/x.csv", 1000)[0]
    partial, note = cohesion.completeness("file:///data/cohesion/hgyj-gyin_sample.csv", 1000)
    assert not partial and "default page" in note
    assert not cohesion.completeness("file:///data/cohesion/hgyj-gyin_sample.csv", 12)[0]
    assert cohesion.completeness("file:///data/cohesion/hgyj-gyin.csv", 1234)[0]


def test_a_catalogue_id_that_is_not_a_socrata_id_is_never_fetched_nor_landed(live, recorded,
                                                                              tmp_path):
    header, rows = recorded
    serve(live, "hgyj-gyin", header, rows[:2])
    serve(live, "9qee-iv7c", ["ms", "cci", "fund", "total"], [["EE", "x", "AMIF", "1"]])
    serve_catalog(live, [
        {"resource": {"id": "abcd-efgh/../../../../elsewhere",
                      "name": "2021-2027 EU payments by programme"}},
        {"resource": {"id": ["abcd-efgh"], "name": "2021-2027 EU payments (an odd answer)"}},
    ])
    entries = run()
    assert {e.dataset for e in entries} == {"hgyj-gyin", "9qee-iv7c"}
    assert not any("elsewhere" in r.path or "abcd-efgh" in r.path for r in live.requests)
    landing = settings().landing_dir
    assert not (landing.parent / "elsewhere").exists()
    assert all(p.resolve().is_relative_to(landing.resolve()) for p in landing.rglob("*"))


def test_a_server_that_ignores_offset_is_stopped_at_the_second_page(live, recorded):
    header, rows = recorded
    url = relative(dataset_url("hgyj-gyin"))
    live.route("/api/views/hgyj-gyin.json",
               Reply(body=json.dumps({"id": "hgyj-gyin", "rowsUpdatedAt": UPDATED}).encode()))
    for offset in range(0, 30 * PAGE, PAGE):  # every offset answers the first page again
        live.route(relative(page_url(url, PAGE, offset)), Reply(body=body(header, rows[:PAGE])))
    serve(live, "9qee-iv7c", ["ms", "cci", "fund", "total"], [["EE", "x", "AMIF", "1"]])
    serve_catalog(live)
    with pytest.raises(DownloadError) as caught:
        run()
    assert caught.value.rule == "paging honoured"
    assert "ignores $offset" in str(caught.value) and f"offset {PAGE:,}" in str(caught.value)
    assert len([r for r in live.requests if r.path == "/resource/hgyj-gyin.csv"]) == 2
    assert not any(e.dataset == "hgyj-gyin" for e in Landing(settings().landing_dir).entries())


def test_a_download_of_more_pages_than_the_ceiling_fails(live, recorded, monkeypatch):
    header, rows = recorded
    monkeypatch.setenv("WH_SOCRATA_MAX_PAGES", "2")
    serve(live, "hgyj-gyin", header, rows[:8])  # three pages of 3, 3 and 2
    serve(live, "9qee-iv7c", ["ms", "cci", "fund", "total"], [["EE", "x", "AMIF", "1"]])
    serve_catalog(live)
    with pytest.raises(DownloadError) as caught:
        run()
    assert caught.value.rule == "page ceiling" and "more than 2 pages" in str(caught.value)
    assert len([r for r in live.requests if r.path == "/resource/hgyj-gyin.csv"]) == 2
