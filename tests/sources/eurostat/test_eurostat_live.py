"""The live Eurostat path against a real HTTP server on 127.0.0.1: table of contents, structure
definitions, gzip-compressed SDMX-CSV, and the answers that are not data (413, 429, 5xx, an empty
200, a body cut short, an HTML page, an asynchronous "queued" envelope). Nothing in ``requests``
is mocked; the code runs in live mode (``WH_SNAPSHOT_DIR`` unset)."""
from __future__ import annotations

import gzip
import json

import pandas as pd
import pytest
import requests

from ingest.config import settings
from ingest.errors import DataError, DownloadError
from ingest.sources.eurostat.source import EurostatSource, parse_dimensions, query_key
from ingest.landing import Landing
from ingest.source import land_new
from tests.sources.eurostat import eurostat_api as api
from tests.replay_server import ReplayServer, Reply

QUERY = "format=SDMX-CSV&compressed=true"
UPDATED = {code: "18.03.2025" for code in api.REQUIRED}


def serve_all(srv: ReplayServer, updates=None, spans=None, skip=()) -> None:
    srv.route(api.TOC_PATH, Reply(body=api.toc(updates or UPDATED, spans),
                                  headers={"Content-Type": "text/plain"}))
    for dataset in api.REQUIRED:
        if dataset in skip:
            continue
        srv.route(api.dsd_path(dataset), Reply(body=api.dsd(dataset),
                                               headers={"Content-Type": "application/xml"}))
        srv.route(api.data_path(dataset), Reply(body=api.gz(api.sdmx_csv(dataset)),
                                                headers={"Content-Type": "application/octet-stream"}))


@pytest.fixture
def server():
    with ReplayServer() as srv:
        yield srv


@pytest.fixture
def live(server, tmp_path, monkeypatch):
    monkeypatch.delenv("WH_SNAPSHOT_DIR", raising=False)
    monkeypatch.delenv("WH_CURATED_DIR", raising=False)
    monkeypatch.setenv("WH_EUROSTAT_API_URL", server.url(api.API))
    monkeypatch.setenv("WH_LANDING_DIR", str(tmp_path / "landing"))
    monkeypatch.setenv("WH_HTTP_BACKOFF_S", "0.01")
    monkeypatch.setenv("WH_HTTP_RETRIES", "3")
    monkeypatch.setenv("WH_HTTP_TIMEOUT_S", "2")
    assert settings().snapshot_dir is None
    return server


def run() -> list:
    return land_new(EurostatSource(), Landing(settings().landing_dir))


def manifest() -> list[dict]:
    path = settings().landing_dir / "manifest.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_structure_definition_gives_the_key_order():
    xml = api.dsd("migr_eirtn", ["freq", "geo", "sex", "c_dest", "age", "citizen", "unit"])
    dims = parse_dimensions(xml.decode(), "dsd")
    assert dims == ["freq", "geo", "sex", "c_dest", "age", "citizen", "unit"]
    assert query_key(dims, {"sex": "T", "age": "TOTAL"}) == "..T..TOTAL.."


def test_every_dataset_lands_once_with_dataset_and_version(live, caplog):
    serve_all(live)
    entries = run()
    assert sorted(e.dataset for e in entries) == sorted(api.REQUIRED)
    # The optional datasets are not in this table of contents: skipped with a warning.
    assert "migr_eirt_vol is not in Eurostat's table of contents" in caplog.text
    for entry in entries:
        assert entry.status == "landed" and entry.version == "18.03.2025"
        assert entry.release_date == "2025-03-18"  # the data's own LAST UPDATE
        assert entry.path.startswith(f"eurostat/{entry.dataset}/") and entry.path.endswith(".gz")
        body = Landing(settings().landing_dir).file(entry).read_bytes()
        assert gzip.decompress(body).decode() == api.sdmx_csv(entry.dataset), \
            "the landed file is the body as received"
    # The key follows each structure definition: totals for sex and age, the rest open.
    [eirtn] = live.requested(api.data_path("migr_eirtn"))
    assert eirtn.path.endswith("/migr_eirtn/...TOTAL.T..") and eirtn.query == QUERY
    assert live.count(api.TOC_PATH) == 1


def test_unchanged_datasets_are_not_downloaded_again(live):
    serve_all(live)
    assert len(run()) == len(api.REQUIRED)
    served = {d: live.count(api.data_path(d)) for d in api.REQUIRED}

    assert run() == []  # same update dates: nothing fetched
    assert {d: live.count(api.data_path(d)) for d in api.REQUIRED} == served

    # Eurostat updates one dataset: only that one is fetched and landed.
    serve_all(live, updates={**UPDATED, "migr_eiord": "25.03.2025"})
    live.route(api.data_path("migr_eiord"), Reply(body=api.gz(api.sdmx_csv(
        "migr_eiord", last_update="25/03/25 11:00:00"))))
    [entry] = run()
    assert (entry.dataset, entry.version, entry.release_date) == (
        "migr_eiord", "25.03.2025", "2025-03-25")
    assert live.count(api.data_path("migr_eiord")) == served["migr_eiord"] + 1
    assert live.count(api.data_path("migr_eirtn")) == served["migr_eirtn"]


def test_a_required_dataset_missing_from_the_table_of_contents_is_an_error(live):
    serve_all(live, updates={k: v for k, v in UPDATED.items() if k != "migr_eirtn"})
    with pytest.raises(DownloadError, match="migr_eirtn is not in Eurostat's table of contents"):
        run()
    assert manifest() == []


def test_413_splits_the_years_until_the_answer_fits(live):
    serve_all(live, spans={"migr_eiord": ("2019", "2024")})
    path = api.data_path("migr_eiord")
    early = [r for r in api.ROWS["migr_eiord"] if r[1] == "2022"]
    late = [r for r in api.ROWS["migr_eiord"] if r[1] == "2023"]
    live.route(path, Reply(status=413, body=b"<faultcode>413</faultcode>EXTRACTION_TOO_BIG"))
    live.route(f"{path}?{QUERY}&startPeriod=2019&endPeriod=2021",
               Reply(body=api.gz(api.sdmx_csv("migr_eiord", []))))  # no data in those years
    live.route(f"{path}?{QUERY}&startPeriod=2022&endPeriod=2024", Reply(status=413))
    live.route(f"{path}?{QUERY}&startPeriod=2022&endPeriod=2023",
               Reply(body=api.gz(api.sdmx_csv("migr_eiord", early + late))))
    live.route(f"{path}?{QUERY}&startPeriod=2024&endPeriod=2024", Reply(body=b""))
    entries = run()
    [entry] = [e for e in entries if e.dataset == "migr_eiord"]
    queries = [r.query for r in live.requested(path)]
    assert queries == [QUERY, f"{QUERY}&startPeriod=2019&endPeriod=2021",
                       f"{QUERY}&startPeriod=2022&endPeriod=2024",
                       f"{QUERY}&startPeriod=2022&endPeriod=2023",
                       f"{QUERY}&startPeriod=2024&endPeriod=2024"]
    parsed = EurostatSource().parse(Landing(settings().landing_dir).file(entry).read_bytes(),
                                    entry.path, entry.dataset)
    assert sorted(frame_of(parsed.rows)["obs_value"].tolist()) == sorted(
        float(r[2]) for r in api.ROWS["migr_eiord"])


def frame_of(rows):
    """Parsed rows as a frame: the Python reader gives one, the DuckDB reader
    (ingest.sources.eurostat.sdmx_csv_duckdb) rows that stay in DuckDB until written."""
    return rows if isinstance(rows, pd.DataFrame) else rows.df()


def test_413_for_a_single_year_is_an_error_naming_the_query(live):
    serve_all(live, spans={"migr_eiord": ("2023", "2023")})
    live.route(api.data_path("migr_eiord"), Reply(status=413))
    with pytest.raises(DownloadError, match=r"extraction size.*years 2023-2023"):
        run()


def test_429_with_retry_after_is_honoured(live):
    serve_all(live)
    path = api.data_path("migr_eipre")
    live.route(path, Reply(status=429, headers={"Retry-After": "1"}),
               Reply(body=api.gz(api.sdmx_csv("migr_eipre"))))
    entries = run()
    assert "migr_eipre" in {e.dataset for e in entries}
    first, second = live.requested(path)
    assert second.at - first.at >= 0.9


def test_5xx_is_retried_then_lands(live):
    serve_all(live)
    path = api.data_path("migr_eirtn1")
    live.route(path, Reply(status=503), Reply(status=502),
               Reply(body=api.gz(api.sdmx_csv("migr_eirtn1"))))
    assert "migr_eirtn1" in {e.dataset for e in run()}
    assert live.count(path) == 3


def test_5xx_forever_is_a_network_error_not_a_data_error(live):
    serve_all(live)
    live.route(api.data_path("migr_eiord1"), Reply(status=503))
    with pytest.raises(requests.RequestException) as caught:
        run()
    assert not isinstance(caught.value, DataError)


def test_empty_answer_with_status_200_is_an_error_and_lands_nothing(live):
    serve_all(live)
    live.route(api.data_path("migr_eiord"), Reply(body=b""))
    with pytest.raises(DownloadError, match="empty answer with status 200"):
        run()
    assert "migr_eiord" not in {e["dataset"] for e in manifest()}


def test_header_without_observations_is_quarantined(live):
    serve_all(live)
    live.route(api.data_path("migr_eiord"), Reply(body=api.gz(api.sdmx_csv("migr_eiord", []))))
    with pytest.raises(DataError, match=r"observations present.*no observations"):
        run()
    [bad] = [e for e in manifest() if e["dataset"] == "migr_eiord"]
    assert bad["status"] == "quarantined"


def test_gzip_body_cut_short_is_quarantined_and_kept(live):
    serve_all(live)
    body = api.gz(api.sdmx_csv("migr_eirtn"))
    live.route(api.data_path("migr_eirtn"), Reply(body=body[: len(body) // 2]))
    with pytest.raises(DataError, match=r"\[gzip complete\] compressed body cut short"):
        run()
    [bad] = [e for e in manifest() if e["dataset"] == "migr_eirtn"]
    assert bad["status"] == "quarantined" and "gzip complete" in bad["error"]
    kept = settings().landing_dir / bad["path"]
    assert kept.read_bytes() == body[: len(body) // 2]
    # The other datasets landed all the same.
    assert {e["dataset"] for e in manifest() if e["status"] == "landed"} == \
        set(api.REQUIRED) - {"migr_eirtn"}


def test_connection_dropped_mid_body_is_retried(live):
    serve_all(live)
    body = api.gz(api.sdmx_csv("migr_eirtn"))
    live.route(api.data_path("migr_eirtn"), Reply(body=body, cut_after=len(body) // 2),
               Reply(body=body))
    assert "migr_eirtn" in {e.dataset for e in run()}


def test_html_page_with_status_200_is_quarantined(live):
    serve_all(live)
    live.route(api.data_path("migr_eipre"), Reply(
        body=b"<!DOCTYPE html><html><body>Service temporarily unavailable</body></html>",
        headers={"Content-Type": "text/html"}))
    with pytest.raises(DataError, match="HTML page, not a CSV file"):
        run()


def test_asynchronous_queued_answer_is_named_as_such(live):
    serve_all(live)
    live.route(api.data_path("migr_asyappctza"), Reply(body=(
        b'<?xml version="1.0"?><ns0:syncResponse xmlns:ns0="urn:x"><queued>'
        b"<id>e3d39a1b</id><status>SUBMITTED</status></queued></ns0:syncResponse>")))
    with pytest.raises(DataError, match="queued the extraction for asynchronous delivery"):
        run()
