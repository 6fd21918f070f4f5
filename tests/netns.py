"""Hosts as Linux network namespaces, for the multi-host topology test (issue 20, item 5).

One ``Network`` per test session: a bridge in the root namespace (the "switch", with the
address ``gateway`` where the shared services listen: PostgreSQL through a forwarder, Redis,
the S3 server) and one namespace per host, joined to the bridge by a veth pair, with an address
of its own on the bridge's /24 and a loopback of its own. A host has no default route: it reaches
the services and the other hosts over the bridge and nothing else (127.0.0.1 is its own loopback,
not the machine's, so the machine's PostgreSQL on 127.0.0.1:5432 is out of its reach).

``Host.argv(...)`` wraps a command to run "on" the host: in its network namespace
(``ip netns exec``), with a UTS namespace of its own (``hostname`` = the host's name) and a mount
namespace of its own, in which the other hosts' folders are covered by an empty read-only tmpfs
(no shared disk for data: what one host writes, another cannot read) and the checkout is
read-only (the code is "the image"). HOME is the host's own folder.

Names carry this process's pid (``whn<pid>-<host>``, bridge ``whb<pid>``, veth ``whv<pid>h<i>``)
so that two sessions never collide and a session killed before it could clean up is recognised
by the next one (its pid is gone) and removed at start (``remove_stale``).

Needs root (or CAP_NET_ADMIN and CAP_SYS_ADMIN), iproute2 ``ip`` with ``netns`` and util-linux
``unshare``. Found when this was written: deleting a namespace removes its veth pair, but the
host end of the pair lingers for a moment after ``ip netns del`` returns (the kernel tears the
namespace down asynchronously); the bridge is removed on its own. ``ip netns exec`` also bind
mounts ``/etc/netns/<name>/*`` over ``/etc`` when that folder exists; nothing here creates it.
"""
from __future__ import annotations

import ipaddress
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
_NS = re.compile(r"^whn(\d+)-[a-z0-9]+$")
_BRIDGE = re.compile(r"^whb(\d+)$")


class NetnsUnavailable(RuntimeError):
    """This machine cannot make namespaces (not root, no ``ip netns``)."""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and done.returncode:
        raise RuntimeError(f"`ip {' '.join(args)}` exited {done.returncode}: "
                           f"{done.stderr.strip() or done.stdout.strip()}")
    return done


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def require() -> None:
    """Raise NetnsUnavailable saying why this machine cannot run the hosts."""
    if os.geteuid() != 0:
        raise NetnsUnavailable("network namespaces need root (ip netns add, veth, mount)")
    for tool in ("ip", "unshare"):
        if shutil.which(tool) is None:
            raise NetnsUnavailable(f"{tool!r} is not on PATH (iproute2, util-linux)")
    done = _ip("netns", "list", check=False)
    if done.returncode:
        raise NetnsUnavailable(f"`ip netns list` exited {done.returncode}: {done.stderr.strip()}")


def namespaces() -> list[str]:
    return [line.split()[0] for line in _ip("netns", "list").stdout.splitlines() if line.strip()]


def links() -> list[str]:
    out = _ip("-o", "link", "show").stdout
    return [line.split(":", 2)[1].strip().split("@")[0] for line in out.splitlines()]


def remove_stale() -> list[str]:
    """Remove the namespaces and bridges a killed session left (their pid is gone); a live
    session's are left alone. Returns what was removed."""
    removed = []
    for name in namespaces():
        if (m := _NS.match(name)) and not _alive(int(m[1])):
            _ip("netns", "del", name, check=False)
            removed.append(name)
    for name in links():
        if (m := _BRIDGE.match(name)) and not _alive(int(m[1])):
            _ip("link", "del", name, check=False)
            removed.append(name)
    return removed


def _free_subnet() -> ipaddress.IPv4Network:
    """A /24 in 10.213.0.0/16 that no address of this machine uses (pid-derived first guess)."""
    used = _ip("-o", "-4", "addr", "show").stdout
    taken = {ipaddress.ip_interface(m).network
             for m in re.findall(r"inet (\S+)", used)}
    start = os.getpid() % 250
    for i in range(250):
        net = ipaddress.ip_network(f"10.213.{(start + i) % 250}.0/24")
        if not any(net.overlaps(t) for t in taken):
            return net
    raise RuntimeError("no free /24 in 10.213.0.0/16 for the test network")


@dataclass
class Host:
    name: str
    netns: str
    address: str
    folder: Path
    network: "Network" = field(repr=False)

    def argv(self, command: list[str], cwd: Path | None = None,
             read_only: tuple[Path, ...] = (REPO_ROOT,)) -> list[str]:
        """``command`` as run on this host (see the module's docstring)."""
        others = [h.folder for h in self.network.hosts.values() if h is not self]
        steps = [f"hostname {shlex.quote(self.name)}"]
        steps += [f"mount -t tmpfs -o ro,size=64k wh-not-shared {shlex.quote(str(f))}"
                  for f in others]
        steps += [f"mount --bind -o ro {shlex.quote(str(p))} {shlex.quote(str(p))}"
                  for p in read_only]
        steps.append(f"cd {shlex.quote(str(cwd or self.folder))}")
        script = " && ".join(steps) + ' && exec "$@"'
        return ["ip", "netns", "exec", self.netns, "unshare", "--uts", "--mount",
                "--propagation", "private", "--", "sh", "-c", script, "sh", *command]

    def run(self, command: list[str], env: dict[str, str] | None = None,
            timeout: float = 60, **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run(self.argv(command), env=env, timeout=timeout,
                              capture_output=True, text=True, **kwargs)


class Network:
    """The bridge and its hosts; ``close()`` removes everything (also after a failure)."""

    def __init__(self, root: Path):
        require()
        self.stale_removed = remove_stale()
        self.root = root
        self.pid = os.getpid()
        self.subnet = _free_subnet()
        addresses = self.subnet.hosts()
        self.gateway = str(next(addresses))
        self._addresses = addresses
        self.bridge = f"whb{self.pid}"
        self.hosts: dict[str, Host] = {}
        self.forwarders: list[Forwarder] = []
        _ip("link", "add", self.bridge, "type", "bridge")
        try:
            _ip("addr", "add", f"{self.gateway}/{self.subnet.prefixlen}", "dev", self.bridge)
            _ip("link", "set", self.bridge, "up")
        except BaseException:
            self.close()
            raise

    def add_host(self, name: str) -> Host:
        if not re.fullmatch(r"[a-z][a-z0-9]{0,8}", name) or name in self.hosts:
            raise ValueError(f"host name {name!r}: lower-case letters and digits, up to 9, "
                             "unique")
        i = len(self.hosts)
        netns, outer, inner = f"whn{self.pid}-{name}", f"whv{self.pid}h{i}", f"whv{self.pid}n{i}"
        address = str(next(self._addresses))
        folder = self.root / f"host-{name}"
        folder.mkdir(parents=True, exist_ok=False)
        _ip("netns", "add", netns)
        host = Host(name, netns, address, folder, self)
        self.hosts[name] = host
        _ip("link", "add", outer, "type", "veth", "peer", "name", inner)
        _ip("link", "set", inner, "netns", netns)
        _ip("link", "set", outer, "master", self.bridge)
        _ip("link", "set", outer, "up")
        for args in (("addr", "add", f"{address}/{self.subnet.prefixlen}", "dev", inner),
                     ("link", "set", inner, "up"), ("link", "set", "lo", "up")):
            _ip("-n", netns, *args)
        return host

    def forward(self, port: int, target: tuple[str, int]) -> "Forwarder":
        """A TCP forwarder on gateway:``port`` to ``target`` (a service of this machine that
        listens on 127.0.0.1 only, such as its PostgreSQL)."""
        fwd = Forwarder((self.gateway, port), target)
        self.forwarders.append(fwd)
        return fwd

    def close(self) -> None:
        for fwd in self.forwarders:
            fwd.close()
        for host in self.hosts.values():
            _ip("netns", "del", host.netns, check=False)
        _ip("link", "del", self.bridge, check=False)


class Forwarder:
    """Accepts on ``listen`` and copies bytes both ways to ``target``, one thread per
    direction. Runs in the test process; ``close()`` stops accepting and ends the copies."""

    def __init__(self, listen: tuple[str, int], target: tuple[str, int]):
        self.target = target
        self.server = socket.create_server(listen)
        self.address = self.server.getsockname()
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True, name=f"fwd{listen}").start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=10)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open |= {client, upstream}
                self.connections += 1
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._copy, args=(a, b), daemon=True).start()

    def _copy(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self.server.close()
        with self._lock:
            for s in self._open:
                s.close()
            self._open.clear()


def probe(address: tuple[str, int], timeout: float = 3) -> str:
    """``ok`` or the error of a TCP connect to ``address`` (run in a host by ``reach``)."""
    try:
        socket.create_connection(address, timeout=timeout).close()
        return "ok"
    except OSError as err:
        return f"{type(err).__name__}: {err}"


def reach(host: Host, addresses: list[tuple[str, int]]) -> dict[tuple[str, int], str]:
    """What a TCP connect from ``host`` to each address gives: "ok" or the error."""
    code = ("import sys, json; from tests.netns import probe; "
            "print(json.dumps([probe((h, int(p))) for h, p in "
            "zip(sys.argv[1::2], sys.argv[2::2])]))")
    args = [a for h, p in addresses for a in (h, str(p))]
    done = host.run([sys.executable, "-c", code, *args], cwd=REPO_ROOT,
                    env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    if done.returncode:
        raise AssertionError(f"probe on host {host.name} exited {done.returncode}: "
                             f"{done.stderr.strip()}")
    import json
    return dict(zip(addresses, json.loads(done.stdout)))
