"""A real HTTP server on 127.0.0.1 that replays recorded responses and injects faults.

Tests point the live code path (``requests`` through ``ingest.http``) at it, so timeouts,
retries, the size cap and streaming are exercised over a real socket, not mocked.

    with ReplayServer() as srv:
        srv.route("/page", Reply(body=b"<html>...", headers={"Content-Type": "text/html"}))
        srv.route("/file.xlsx", Reply(status=503), Reply(body=data))
        ...
        assert srv.count("/file.xlsx") == 2

Each route holds a list of replies consumed in order, one per request; the last reply repeats
for every further request (so ``Reply(status=503)`` alone means "503 forever"). A route may name
a path (any query) or a path with its exact query string (``/data/x?startPeriod=2010``), which
wins. A path with no route answers 404. Every request is recorded (method, path, headers) before it is answered.

Conditional requests are honoured as a real server does: a request whose ``If-None-Match``
names the reply's ``ETag``, or whose ``If-Modified-Since`` is not before its ``Last-Modified``,
gets 304 with no body; ``Reply(conditional=False)`` is a server that ignores them (always the
whole answer). ``body_bytes(path)`` says how many body bytes the server sent for a path.
"""
from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CHUNK = 16 * 1024


@dataclass(frozen=True)
class Reply:
    """One recorded (or faulty) response."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    """Sleep before the status line (a server that is slow to answer: a read timeout)."""
    chunked: bool = False
    """Declare no Content-Length; send the body with ``Transfer-Encoding: chunked``."""
    cut_after: int | None = None
    """Declare the full Content-Length, send only this many body bytes, then drop the
    connection (a download broken by the network)."""
    pause_after: int | None = None
    """Send this many body bytes, then sleep ``pause_s`` before the rest (a stalled body)."""
    pause_s: float = 0.0
    trickle: tuple[int, float] | None = None
    """Send the body this many bytes at a time with this many seconds between (a server that
    trickles: each read gets a few bytes before the per-read timeout)."""
    repeat: int = 1
    """Send the body this many times over, chunked (no Content-Length): with a large number, a
    page that never ends (it stops early when the client hangs up)."""
    conditional: bool = True
    """Answer a matching If-None-Match / If-Modified-Since with 304 and no body (False: a server
    that ignores conditional headers)."""

    def not_modified(self, headers: dict[str, str]) -> bool:
        """Whether a request with these headers gets 304 instead of this reply."""
        if not self.conditional or self.status != 200:
            return False
        mine = {k.lower(): v for k, v in self.headers.items()}
        asked = {k.lower(): v for k, v in headers.items()}
        if "if-none-match" in asked:  # it wins over If-Modified-Since (RFC 9110 13.2.2)
            tags = [tag.strip() for tag in asked["if-none-match"].split(",")]
            return "etag" in mine and (mine["etag"] in tags or "*" in tags)
        if "if-modified-since" in asked and "last-modified" in mine:
            try:
                return (parsedate_to_datetime(mine["last-modified"])
                        <= parsedate_to_datetime(asked["if-modified-since"]))
            except (TypeError, ValueError):
                return False
        return False


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    at: float
    """``time.monotonic()`` when the request arrived (to check backoff and Retry-After)."""
    query: str = ""
    """The query string, without the ``?``."""


class ReplayServer:
    """``ThreadingHTTPServer`` on an ephemeral port of 127.0.0.1, served from a daemon thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._routes: dict[str, list[Reply]] = {}
        self.requests: list[Request] = []
        self._sent: dict[str, int] = {}
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- configuration and inspection -------------------------------------------------------

    def route(self, path: str, *replies: Reply) -> None:
        """Replace the replies of ``path`` (consumed in order, the last one repeats)."""
        if not replies:
            raise ValueError("a route needs at least one reply")
        with self._lock:
            self._routes[path] = list(replies)

    def url(self, path: str = "/") -> str:
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}{path}"

    def requested(self, path: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def count(self, path: str) -> int:
        return len(self.requested(path))

    def body_bytes(self, path: str) -> int:
        """Body bytes sent in answers to requests for ``path`` (a 304 sends none)."""
        with self._lock:
            return self._sent.get(path, 0)

    def _count_sent(self, raw_path: str, size: int) -> None:
        with self._lock:
            path = urlsplit(raw_path).path
            self._sent[path] = self._sent.get(path, 0) + size

    def _next_reply(self, method: str, raw_path: str, headers: dict[str, str]) -> Reply | None:
        parts = urlsplit(raw_path)
        path = parts.path
        with self._lock:
            self.requests.append(Request(method, path, headers, time.monotonic(), parts.query))
            # A route for the path with its query string wins over one for the path alone.
            queue = self._routes.get(f"{path}?{parts.query}") if parts.query else None
            queue = queue or self._routes.get(path)
            if not queue:
                return None
            return queue.pop(0) if len(queue) > 1 else queue[0]

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> "ReplayServer":
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive and chunked encoding, like a real server

            def log_message(self, format: str, *args) -> None:  # noqa: A002 - quiet tests
                pass

            def do_GET(self) -> None:  # noqa: N802
                self._answer(send_body=True)

            def do_HEAD(self) -> None:  # noqa: N802
                self._answer(send_body=False)

            def _answer(self, send_body: bool) -> None:
                reply = server._next_reply(self.command, self.path, dict(self.headers.items()))
                if reply is None:
                    reply = Reply(status=404, body=b"not found",
                                  headers={"Content-Type": "text/plain"})
                try:
                    if reply.not_modified(dict(self.headers.items())):
                        self.send_response(304)
                        for name, value in reply.headers.items():
                            if name.lower() in ("etag", "last-modified"):
                                self.send_header(name, value)
                        self.end_headers()
                        return
                    self._send(reply, send_body)
                except (BrokenPipeError, ConnectionResetError, socket.timeout, OSError):
                    # The client gave up (read timeout, size cap): nothing more to say.
                    self.close_connection = True

            def _send(self, reply: Reply, send_body: bool) -> None:
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                chunked = reply.chunked or reply.repeat > 1
                if chunked:
                    self.send_header("Transfer-Encoding", "chunked")
                else:
                    self.send_header("Content-Length", str(len(reply.body)))
                if reply.cut_after is not None:
                    self.send_header("Connection", "close")
                self.end_headers()
                if not send_body:
                    return
                body = reply.body
                if reply.repeat > 1:  # a client that hangs up ends it (OSError, see _answer)
                    for _ in range(reply.repeat):
                        self._write(body, chunked=True)
                    self.wfile.write(b"0\r\n\r\n")
                    self.wfile.flush()
                    return
                if reply.cut_after is not None:
                    self.wfile.write(body[:reply.cut_after])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if reply.trickle is not None:
                    size, pause = reply.trickle
                    try:
                        for i in range(0, len(body), size):
                            self._write(body[i:i + size], reply.chunked)
                            self.wfile.flush()
                            time.sleep(pause)
                    except OSError:  # the client gave up: what a trickle is for
                        self.close_connection = True
                        return
                    body = b""
                if reply.pause_after is not None:
                    self._write(body[:reply.pause_after], reply.chunked)
                    self.wfile.flush()
                    time.sleep(reply.pause_s)
                    body = body[reply.pause_after:]
                self._write(body, reply.chunked)
                if reply.chunked:
                    self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()

            def _write(self, data: bytes, chunked: bool) -> None:
                server._count_sent(self.path, len(data))
                for i in range(0, len(data), CHUNK):
                    part = data[i:i + CHUNK]
                    if chunked:
                        self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
                    else:
                        self.wfile.write(part)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="replay-server",
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> "ReplayServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
