"""The hosts of the multi-host test (tests/netns.py) are isolated the way separate machines are:
a host reaches the shared services over the bridge only, never the machine's 127.0.0.1, and
cannot read what another host wrote. Fast (about 10 s, most of it SeaweedFS starting): no Airflow, no dbt."""
from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from tests import netns
from tests import topology as topo
from tests.s3server import S3Server


@pytest.fixture(scope="module")
def network(tmp_path_factory):
    try:
        netns.require()
    except netns.NetnsUnavailable as err:
        pytest.fail(f"the multi-host tests need network namespaces: {err}", pytrace=False)
    net = netns.Network(tmp_path_factory.mktemp("netns"))
    try:
        yield net
    finally:
        net.close()


def test_stale_namespaces_of_a_dead_session_are_removed(tmp_path):
    """A session killed before its clean-up leaves its namespace and bridge; the next one removes
    them (the pid in the name is gone) and leaves a live session's alone."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a pid that no longer runs (reuse within this test is not a concern)
    ns, bridge = f"whn{dead.pid}-stale", f"whb{dead.pid}"
    live_ns = f"whn{os.getpid()}-live"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    subprocess.run(["ip", "link", "add", bridge, "type", "bridge"], check=True)
    subprocess.run(["ip", "netns", "add", live_ns], check=True)
    try:
        removed = netns.remove_stale()
        assert ns in removed and bridge in removed, (
            f"remove_stale() should remove the dead session's {ns} and {bridge}, removed {removed}")
        assert ns not in netns.namespaces() and bridge not in netns.links(), (
            f"{ns} or {bridge} still there after remove_stale()")
        assert live_ns in netns.namespaces(), (
            f"remove_stale() removed {live_ns}, which belongs to this live session")
    finally:
        for cmd in (["ip", "netns", "del", ns], ["ip", "link", "del", bridge],
                    ["ip", "netns", "del", live_ns]):
            subprocess.run(cmd, capture_output=True)


def test_hosts_reach_services_over_the_bridge_only(network, tmp_path):
    net = network
    worker = net.hosts.get("iso1") or net.add_host("iso1")
    other = net.hosts.get("iso2") or net.add_host("iso2")

    # The machine's PostgreSQL, forwarded to the bridge; a Redis server bound to the bridge.
    topo.require_services()
    pg = net.forward(0, (topo.PG_HOST, topo.PG_PORT))
    password = secrets.token_urlsafe(16)
    redis_port = topo.free_port()
    redis = topo.start_redis(tmp_path / "redis", redis_port, password, tmp_path / "redis.log",
                             host=net.gateway)
    s3 = None
    try:
        s3 = S3Server(host=net.gateway).start()
        seen = netns.reach(worker, [(net.gateway, pg.address[1]), (net.gateway, redis_port),
                                    (net.gateway, s3.port),
                                    ("127.0.0.1", topo.PG_PORT), ("127.0.0.1", redis_port),
                                    ("127.0.0.1", s3.port), (other.address, 22)])
        # The object store through the project's client, from inside the host.
        env = {**os.environ, **s3.env(s3.create_bucket()), "PYTHONPATH": str(netns.REPO_ROOT)}
        code = ("from ingest import storage; s = storage.configured(); "
                "s.put('probe', b'from a host', if_none_match=True); print(s.get('probe')[0])")
        stored = worker.run([sys.executable, "-c", code], env=env, cwd=netns.REPO_ROOT)
    finally:
        redis.stop()
        if s3 is not None:
            s3.stop()
    assert stored.returncode == 0 and stored.stdout.strip() == "b'from a host'", (
        f"host {worker.name} could not put and get an object at {env['AWS_ENDPOINT_URL']}: "
        f"{stored.stdout}{stored.stderr[-2000:]}")
    assert seen[(net.gateway, s3.port)] == "ok", (
        f"host {worker.name} cannot reach the S3 server on {net.gateway}:{s3.port}: {seen}")
    assert seen[(net.gateway, pg.address[1])] == "ok", (
        f"host {worker.name} cannot reach PostgreSQL forwarded on {net.gateway}:{pg.address[1]}: "
        f"{seen}")
    assert seen[(net.gateway, redis_port)] == "ok", (
        f"host {worker.name} cannot reach Redis on {net.gateway}:{redis_port}: {seen}")
    for local in (("127.0.0.1", topo.PG_PORT), ("127.0.0.1", redis_port),
                  ("127.0.0.1", s3.port)):
        assert seen[local] != "ok", (
            f"host {worker.name} reached the machine's {local[0]}:{local[1]}: its loopback must be "
            f"its own ({seen})")
    assert "Refused" in seen[(other.address, 22)], (
        f"host {worker.name} should reach host {other.name} ({other.address}) over the bridge and "
        f"be refused on a closed port, got {seen[(other.address, 22)]}")
    assert pg.connections >= 1, "the PostgreSQL forwarder saw no connection"

    # No route off the bridge.
    routes = worker.run(["ip", "route"]).stdout
    assert "default" not in routes, f"host {worker.name} has a default route: {routes}"


def test_hosts_share_no_disk(network):
    net = network
    a = net.hosts.get("iso1") or net.add_host("iso1")
    b = net.hosts.get("iso2") or net.add_host("iso2")
    wrote = a.run(["sh", "-c", "echo landed > mine.txt && hostname && cat mine.txt"])
    assert wrote.returncode == 0 and wrote.stdout.split() == [a.name, "landed"], (
        f"host {a.name} could not write its own folder or has another hostname: {wrote}")
    assert (a.folder / "mine.txt").is_file()
    peek = b.run(["sh", "-c", f"ls -A {a.folder}; cat {a.folder / 'mine.txt'}; "
                              f"touch {a.folder / 'x'}; touch {netns.REPO_ROOT / 'x'}"])
    assert "landed" not in peek.stdout, (
        f"host {b.name} read {a.folder / 'mine.txt'}, a file of host {a.name}: {peek}")
    assert peek.stderr.count("Read-only file system") == 2, (
        f"host {b.name} should find host {a.name}'s folder and the checkout read-only: {peek}")
    assert not (netns.REPO_ROOT / "x").exists()
