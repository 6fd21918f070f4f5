"""What `make run` tells a user whose source DAG failed on the network: the hint matches the
failure (a server error is not "no network"). The errors are real ones, from requests against a
server on 127.0.0.1."""
from __future__ import annotations

import pytest
import requests

from pipeline.run import network_hint
from tests.replay_server import ReplayServer, Reply


def failure_of(status: int) -> requests.RequestException:
    with ReplayServer() as srv:
        srv.route("/data.csv", Reply(status=status, body=b"error"))
        try:
            requests.get(srv.url("/data.csv"), timeout=5).raise_for_status()
        except requests.RequestException as err:
            return err
    raise AssertionError("no error")


@pytest.mark.parametrize("status", [500, 503])
def test_a_server_error_says_the_server_failed(status):
    err = failure_of(status)
    hint = network_hint(type(err).__name__, str(err))
    assert f"server failed (HTTP {status}" in hint and "No answer" not in hint
    assert "WH_SNAPSHOT_DIR=../shared/data" in hint


def test_a_refusal_asks_whether_the_address_changed():
    err = failure_of(404)
    hint = network_hint(type(err).__name__, str(err))
    assert "refused the request (HTTP 404)" in hint and "address" in hint


def test_no_answer_at_all_suggests_the_network():
    with ReplayServer() as srv:
        url = srv.url("/data.csv")
    with pytest.raises(requests.ConnectionError) as caught:  # the server is gone
        requests.get(url, timeout=2)
    hint = network_hint(type(caught.value).__name__, str(caught.value))
    assert hint.startswith("No answer from the server")


def test_a_run_knows_whether_the_file_now_published_is_its_own(tmp_path, monkeypatch):
    """A transform that failed after its publish step (the report, say) must not be told as
    'the published warehouse was not changed': make run asks the publish record whose file is
    published now (pipeline.warehouse.published_by)."""
    import duckdb

    from pipeline import warehouse
    monkeypatch.setenv("WH_WAREHOUSE", str(tmp_path / "migration.duckdb"))
    published = tmp_path / "migration.duckdb"
    assert not warehouse.published_by("r1"), "no file, no record: nothing was published"
    duckdb.connect(str(published)).close()
    warehouse._write_record(published, "r1", "0" * 64)
    assert warehouse.published_by("r1"), "the record names run r1"
    assert not warehouse.published_by("r2"), "run r2 did not publish the file now published"
