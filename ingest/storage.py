"""Object storage: an S3 bucket (prefix) as the home of landing, the warehouse and the runs.

``WH_STORAGE_URL=s3://<bucket>/<prefix>`` turns it on (unset: local files as before). The
endpoint and the credentials are the standard ``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION`` (default us-east-1) and ``AWS_SESSION_TOKEN``
(optional); requests go path-style (``<endpoint>/<bucket>/<key>``).

The client is ``requests`` with AWS Signature V4 written here (docs/decisions.md: "S3 client:
requests + SigV4, not boto3"). What the pipeline relies on is the conditional write:
``put(..., if_none_match=True)`` lands a key once (HTTP 412 when it exists) and
``put(..., if_match=etag)`` replaces it only if nobody changed it since ``etag`` was read (412
otherwise); ``update`` builds a compare-and-swap loop on it. Every request has a timeout
(``WH_HTTP_TIMEOUT_S``) and is retried with backoff on connection errors and 5xx
(``WH_HTTP_RETRIES``, ``WH_HTTP_BACKOFF_S``), never on 4xx. Errors name the operation, the
``s3://`` URL, the HTTP status and the server's ``<Code>`` and ``<Message>``.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import os
import random
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

import requests

from ingest import config

log = logging.getLogger(__name__)

MB = 1024 * 1024
MULTIPART_THRESHOLD = 64 * MB
"""A Path larger than this is uploaded in parts (one PUT up to it)."""
PART_SIZE = 16 * MB
LIST_PAGE = 1000
CHUNK = 1 << 20
S3_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


class StorageError(Exception):
    """An S3 request that failed: names the operation, the s3:// URL of the key, the HTTP status
    and the server's code and message."""

    def __init__(self, operation: str, url: str, status: int | None = None, code: str = "",
                 message: str = "") -> None:
        self.operation, self.url, self.status = operation, url, status
        self.code, self.message = code, message
        what = f"HTTP {status}" if status is not None else "no answer"
        detail = ": ".join(p for p in (code, message) if p)
        super().__init__(f"{operation} {url}: {what}" + (f" {detail}" if detail else ""))


class PreconditionFailed(StorageError):
    """HTTP 412: the key exists (``if_none_match``) or changed since its etag was read
    (``if_match``)."""


@dataclass(frozen=True)
class Obj:
    """One stored object. ``etag`` is as the server gives it (quoted); pass it back to
    ``put(if_match=...)`` unchanged."""

    key: str
    etag: str
    size: int
    modified: str


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def _encode(text: str, safe: str = "") -> str:
    return quote(text, safe="-_.~" + safe)


def sign(method: str, url: str, headers: dict[str, str], payload_sha256: str, *, access_key: str,
         secret_key: str, region: str, session_token: str | None = None,
         now: dt.datetime | None = None) -> dict[str, str]:
    """AWS Signature V4 for S3: the headers to send (``headers`` plus x-amz-date,
    x-amz-content-sha256, the token and Authorization). ``url`` must already be percent-encoded
    (path) with its query in canonical form (sorted, encoded)."""
    now = now or dt.datetime.now(dt.timezone.utc)
    stamp, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    parts = urlsplit(url)
    signed = {k.lower(): v.strip() for k, v in headers.items()}
    signed.update({"host": parts.netloc, "x-amz-date": stamp,
                   "x-amz-content-sha256": payload_sha256})
    if session_token:
        signed["x-amz-security-token"] = session_token
    names = sorted(signed)
    canonical = "\n".join([method, parts.path or "/", parts.query,
                           "".join(f"{n}:{signed[n]}\n" for n in names), ";".join(names),
                           payload_sha256])
    scope = f"{day}/{region}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", stamp, scope, _sha256(canonical.encode())])
    key = _hmac(_hmac(_hmac(_hmac(f"AWS4{secret_key}".encode(), day), region), "s3"),
                "aws4_request")
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    out = {k: v for k, v in signed.items() if k != "host"}
    out["authorization"] = (f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, "
                            f"SignedHeaders={';'.join(names)}, Signature={signature}")
    return out


def _error_of(resp: requests.Response) -> tuple[str, str]:
    """The server's <Code> and <Message> (empty for a HEAD or a body that is not S3 XML)."""
    try:
        root = ET.fromstring(resp.content or b"<none/>")
    except ET.ParseError:
        return "", (resp.text or "")[:200].strip()
    return (root.findtext("Code") or root.findtext(f"{S3_NS}Code") or "",
            root.findtext("Message") or root.findtext(f"{S3_NS}Message") or "")


class Store:
    """The objects under ``s3://bucket/prefix`` on one endpoint. Keys are relative to the
    prefix (``landing/manifest.jsonl``)."""

    multipart_threshold = MULTIPART_THRESHOLD
    part_size = PART_SIZE
    page_size = LIST_PAGE

    def __init__(self, url: str, endpoint: str, access_key: str, secret_key: str,
                 region: str = "us-east-1", session_token: str | None = None, *,
                 timeout_s: float | None = None, retries: int | None = None,
                 backoff_s: float | None = None) -> None:
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise ValueError(f"{url!r} is not an s3://<bucket>/<prefix> URL")
        self.bucket = parts.netloc
        self.prefix = parts.path.strip("/")
        self.url = f"s3://{self.bucket}" + (f"/{self.prefix}" if self.prefix else "")
        self.endpoint = endpoint.rstrip("/")
        self._credentials = dict(access_key=access_key, secret_key=secret_key, region=region,
                                 session_token=session_token or None)
        s = config.settings()
        self.timeout_s = s.http_timeout_s if timeout_s is None else timeout_s
        self.retries = s.http_retries if retries is None else retries
        self.backoff_s = s.http_backoff_s if backoff_s is None else backoff_s
        self.session = requests.Session()
        self._bucket_seen = False

    def __repr__(self) -> str:
        return f"Store({self.url!r} at {self.endpoint})"

    # --- names -----------------------------------------------------------------------------
    def _full(self, key: str) -> str:
        if not key or key.startswith("/") or "//" in key or any(
                p in (".", "..") for p in key.split("/")):
            raise ValueError(f"bad object key {key!r} under {self.url}: keys are relative "
                             "(no leading /, no empty, '.' or '..' parts)")
        return f"{self.prefix}/{key}" if self.prefix else key

    def uri(self, key: str) -> str:
        """``s3://bucket/prefix/key``: for messages, and for DuckDB's readers (httpfs)."""
        return f"s3://{self.bucket}/{self._full(key)}"

    def _http_url(self, full_key: str | None, query: dict[str, str] | None = None) -> str:
        path = f"/{self.bucket}" + (f"/{_encode(full_key, '/')}" if full_key is not None else "")
        qs = "&".join(f"{_encode(k)}={_encode(v)}" for k, v in sorted((query or {}).items()))
        return self.endpoint + path + (f"?{qs}" if qs else "")

    # --- one request -----------------------------------------------------------------------
    def _request(self, operation: str, method: str, key: str | None, *,
                 query: dict[str, str] | None = None, headers: dict[str, str] | None = None,
                 body: bytes | Callable[[], object] = b"", payload_sha256: str | None = None,
                 stream: bool = False, ok: tuple[int, ...] = (200,),
                 missing_ok: bool = False) -> requests.Response | None:
        """One signed request, retried on connection errors and 5xx. ``body`` is bytes, or a
        function giving a fresh file object for each attempt (with ``payload_sha256``).
        Returns the response, or None for a missing key when ``missing_ok``; anything else
        raises StorageError (PreconditionFailed for 412)."""
        full = self._full(key) if key is not None else None
        where = f"s3://{self.bucket}" + (f"/{full}" if full is not None else "")
        url = self._http_url(full, query)
        if payload_sha256 is None:
            assert isinstance(body, bytes)
            payload_sha256 = _sha256(body) if body else EMPTY_SHA256
        attempt = self.last_attempts = 0
        while True:
            signed = sign(method, url, dict(headers or {}), payload_sha256, **self._credentials)
            data = body() if callable(body) else (body or None)
            try:
                resp = self.session.request(method, url, headers=signed, data=data,
                                            stream=stream,
                                            timeout=(self.timeout_s, self.timeout_s))
                failure = None if resp.status_code < 500 else f"HTTP {resp.status_code}"
            except (requests.ConnectionError, requests.Timeout) as err:
                resp, failure = None, f"{type(err).__name__}: {err}"
            finally:
                if hasattr(data, "close"):
                    data.close()
            if failure is None or attempt >= self.retries:
                break
            attempt = self.last_attempts = attempt + 1
            wait = self.backoff_s * 2 ** (attempt - 1)
            log.warning("%s %s: %s; retry %d of %d in %.1f s", operation, where, failure,
                        attempt, self.retries, wait)
            if resp is not None:
                resp.close()
            time.sleep(wait)
        if resp is None:
            raise StorageError(operation, where, None, "",
                               f"{failure} (endpoint {self.endpoint}, {attempt + 1} attempts)")
        if resp.status_code in ok:
            self._bucket_seen = True
            return resp
        code, message = _error_of(resp) if method != "HEAD" else ("", "")
        resp.close()
        if resp.status_code == 404 and missing_ok and full is not None:
            if code == "NoSuchKey" or (not code and self._bucket_exists()):
                return None
            code = code or "NoSuchBucket"
            message = message or f"the bucket {self.bucket} does not exist at {self.endpoint}"
        if resp.status_code == 412:
            raise PreconditionFailed(operation, where, 412, code or "PreconditionFailed", message
                                     or "the key exists or changed since its etag was read")
        raise StorageError(operation, where, resp.status_code, code, message)

    def _check_bucket(self, operation: str, key: str) -> None:
        """Before the first write: the bucket must exist (SeaweedFS creates a missing bucket on a
        PUT from an admin identity, so a typo in the bucket would land silently elsewhere)."""
        if not self._bucket_exists():
            raise StorageError(operation, self.uri(key), 404, "NoSuchBucket",
                               f"the bucket {self.bucket} does not exist at {self.endpoint}")

    def _bucket_exists(self) -> bool:
        """Whether the bucket is there (a HEAD of a key gives a bare 404 for either)."""
        if self._bucket_seen:
            return True
        resp = self._request("head bucket", "HEAD", None, ok=(200, 404))
        resp.close()
        self._bucket_seen = resp.status_code == 200
        return self._bucket_seen

    def create_bucket(self) -> None:
        """Create the bucket (deployments and tests; the pipeline expects it to exist)."""
        self._request("create bucket", "PUT", None).close()

    # --- the API ---------------------------------------------------------------------------
    def get(self, key: str) -> tuple[bytes, str] | None:
        """(body, etag), or None when the key is missing."""
        resp = self._request("get", "GET", key, missing_ok=True)
        if resp is None:
            return None
        return resp.content, resp.headers.get("ETag", "")

    def head(self, key: str) -> Obj | None:
        resp = self._request("head", "HEAD", key, missing_ok=True)
        if resp is None:
            return None
        return Obj(key, resp.headers.get("ETag", ""), int(resp.headers.get("Content-Length", 0)),
                   _iso(resp.headers.get("Last-Modified", "")))

    def put(self, key: str, data: bytes | Path, *, if_none_match: bool = False,
            if_match: str | None = None) -> str:
        """Write ``data`` at ``key``; returns the new etag. ``if_none_match``: only if the key
        does not exist; ``if_match``: only if its etag is still this one. Either refused is
        PreconditionFailed. A Path is streamed from the file; above ``multipart_threshold`` in
        parts, the Complete carrying the same condition (nothing is visible before it)."""
        if if_none_match and if_match:
            raise ValueError("put: if_none_match and if_match exclude each other")
        headers = {"if-none-match": "*"} if if_none_match else (
            {"if-match": if_match} if if_match else {})
        self._check_bucket("put", key)
        if isinstance(data, Path):
            size = data.stat().st_size
            if size > self.multipart_threshold:
                return self._put_multipart(key, data, size, headers)
            digest = hashlib.sha256()
            with open(data, "rb") as f:
                while chunk := f.read(CHUNK):
                    digest.update(chunk)
            return self._put_once(key, headers, lambda: open(data, "rb"), digest.hexdigest(),
                                  None)
        data = bytes(data)
        return self._put_once(key, headers, data, _sha256(data), hashlib.md5(data).hexdigest())

    def _put_once(self, key: str, headers: dict[str, str], body, sha256: str,
                  md5: str | None) -> str:
        try:
            resp = self._request("put", "PUT", key, headers=headers, body=body,
                                 payload_sha256=sha256)
        except PreconditionFailed:
            # A conditional PUT retried after a lost answer finds its own first attempt: the
            # object there is ours (same MD5), so the write did happen.
            if self.last_attempts and md5 and (now := self.head(key)) is not None \
                    and now.etag.strip('"') == md5:
                log.warning("put %s: 412 on a retry, but the object is the one sent (the first "
                            "attempt's answer was lost)", self.uri(key))
                return now.etag
            raise
        resp.close()
        return resp.headers.get("ETag", "")

    def _put_multipart(self, key: str, path: Path, size: int, headers: dict[str, str]) -> str:
        if headers.get("if-none-match") and self.head(key) is not None:
            # Refused at Complete anyway; this saves sending the parts.
            raise PreconditionFailed("put (multipart)", self.uri(key), 412, "PreconditionFailed",
                                     "the key exists")
        resp = self._request("start multipart upload", "POST", key, query={"uploads": ""})
        upload_id = ET.fromstring(resp.content).findtext(f"{S3_NS}UploadId") or ET.fromstring(
            resp.content).findtext("UploadId")
        if not upload_id:
            raise StorageError("start multipart upload", self.uri(key), resp.status_code, "",
                               f"no UploadId in the answer: {resp.text[:200]}")
        try:
            etags = []
            with open(path, "rb") as f:
                for number in range(1, (size + self.part_size - 1) // self.part_size + 1):
                    chunk = f.read(self.part_size)
                    part = self._request(f"upload part {number}", "PUT", key, body=chunk,
                                         query={"partNumber": str(number), "uploadId": upload_id})
                    part.close()
                    etags.append(part.headers.get("ETag", ""))
            xml = "".join(f"<Part><PartNumber>{n}</PartNumber><ETag>{e}</ETag></Part>"
                          for n, e in enumerate(etags, 1))
            done = self._request("complete multipart upload", "POST", key, headers=headers,
                                 query={"uploadId": upload_id},
                                 body=f"<CompleteMultipartUpload>{xml}"
                                      "</CompleteMultipartUpload>".encode())
        except BaseException:
            try:
                self._request("abort multipart upload", "DELETE", key,
                              query={"uploadId": upload_id}, ok=(200, 204, 404)).close()
            except StorageError as err:
                log.warning("%s (the parts stay until the bucket's lifecycle removes them)", err)
            raise
        # A Complete can fail with 200 and an <Error> body.
        root = ET.fromstring(done.content)
        if root.tag.removeprefix(S3_NS) == "Error":
            code, message = root.findtext("Code") or "", root.findtext("Message") or ""
            cls = PreconditionFailed if code == "PreconditionFailed" else StorageError
            raise cls("complete multipart upload", self.uri(key), done.status_code, code, message)
        return (root.findtext(f"{S3_NS}ETag") or root.findtext("ETag")
                or done.headers.get("ETag", ""))

    def download(self, key: str, path: Path) -> str | None:
        """Stream ``key`` to ``path`` (through ``path.part``, renamed when complete); its etag,
        or None when the key is missing (``path`` untouched)."""
        resp = self._request("download", "GET", key, missing_ok=True, stream=True)
        if resp is None:
            return None
        part = path.with_name(path.name + ".part")
        path.parent.mkdir(parents=True, exist_ok=True)
        written = 0
        try:
            with resp, open(part, "wb") as f:
                for chunk in resp.iter_content(CHUNK):
                    f.write(chunk)
                    written += len(chunk)
            expected = resp.headers.get("Content-Length")
            if expected is not None and int(expected) != written:
                raise StorageError("download", self.uri(key), resp.status_code, "Truncated",
                                   f"{written} of {expected} bytes arrived")
            os.replace(part, path)
        except requests.RequestException as err:
            part.unlink(missing_ok=True)
            raise StorageError("download", self.uri(key), resp.status_code, "",
                               f"{type(err).__name__}: {err}") from err
        except BaseException:
            part.unlink(missing_ok=True)
            raise
        return resp.headers.get("ETag", "")

    def list(self, prefix: str = "") -> list[Obj]:
        """Every object whose key starts with ``prefix`` (relative to the store's prefix),
        sorted by key, all pages."""
        full = (f"{self.prefix}/" if self.prefix else "") + prefix
        strip = len(self.prefix) + 1 if self.prefix else 0
        found: list[Obj] = []
        token = None
        while True:
            query = {"list-type": "2", "max-keys": str(self.page_size), "prefix": full}
            if token:
                query["continuation-token"] = token
            resp = self._request("list", "GET", None, query=query)
            root = ET.fromstring(resp.content)
            for item in root.iter(f"{S3_NS}Contents"):
                found.append(Obj(item.findtext(f"{S3_NS}Key", "")[strip:],
                                 item.findtext(f"{S3_NS}ETag", ""),
                                 int(item.findtext(f"{S3_NS}Size", "0")),
                                 _iso(item.findtext(f"{S3_NS}LastModified", ""))))
            token = root.findtext(f"{S3_NS}NextContinuationToken")
            if root.findtext(f"{S3_NS}IsTruncated") != "true" or not token:
                break
        return sorted(found, key=lambda o: o.key)

    def delete(self, key: str) -> None:
        """Remove ``key``; a missing key is fine (a missing bucket is not)."""
        resp = self._request("delete", "DELETE", key, ok=(200, 204), missing_ok=True)
        if resp is not None:
            resp.close()

    def update(self, key: str, change: Callable[[bytes | None], bytes | None],
               attempts: int = 20) -> bytes | None:
        """Compare-and-swap: read ``key`` (None when missing), ``change(old)`` gives the new
        body (None: leave it as it is), written only if nobody wrote it in between (If-Match
        the etag read, If-None-Match when it was missing); on 412 start again. Returns the body
        now stored (the old one when ``change`` returned None). ``change`` may run several
        times: it must not have other effects."""
        for attempt in range(attempts):
            current = self.get(key)
            old, etag = current if current is not None else (None, None)
            new = change(old)
            if new is None:
                return old
            try:
                if etag is None:
                    self.put(key, new, if_none_match=True)
                else:
                    self.put(key, new, if_match=etag)
                return new
            except PreconditionFailed:
                # Someone else wrote it: read again, after a short random wait so that many
                # writers do not keep colliding.
                time.sleep(random.uniform(0, 0.02 * (attempt + 1)))
        raise StorageError("update", self.uri(key), 412, "PreconditionFailed",
                           f"still changed by others after {attempts} attempts")


def _iso(when: str) -> str:
    """A time of HEAD (HTTP date) or LIST (ISO 8601) as ISO 8601 UTC to the second
    (``2026-12-05T13:30:42Z``), the same for both."""
    from email.utils import parsedate_to_datetime
    try:
        moment = (dt.datetime.fromisoformat(when.replace("Z", "+00:00")) if when[:1].isdigit()
                  else parsedate_to_datetime(when))
        return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (TypeError, ValueError):
        return when


def httpfs_extension() -> Path:
    """DuckDB's httpfs extension file shipped by the duckdb-extension-httpfs package (so nothing
    is downloaded at run time)."""
    import duckdb
    import duckdb_extension_httpfs
    path = (Path(duckdb_extension_httpfs.__file__).parent / "extensions"
            / f"v{duckdb.__version__}" / "httpfs.duckdb_extension")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the httpfs extension for DuckDB {duckdb.__version__} is "
                                "not installed (duckdb-extension-httpfs of the same version, "
                                "requirements.txt)")
    return path


def open_in_duckdb(con, store: Store, name: str = "wh_storage") -> None:
    """Let the DuckDB connection ``con`` read ``store``'s objects by their ``store.uri(key)``
    (read_parquet, read_text, ATTACH ... (READ_ONLY)): loads the packaged httpfs and creates a
    secret for the bucket with the store's endpoint and credentials (path-style)."""
    def literal(text: str) -> str:
        return "'" + text.replace("'", "''") + "'"
    endpoint = urlsplit(store.endpoint)
    c = store._credentials
    options = {"KEY_ID": c["access_key"], "SECRET": c["secret_key"], "REGION": c["region"],
               "ENDPOINT": endpoint.netloc + endpoint.path.rstrip("/"), "URL_STYLE": "path",
               "SCOPE": f"s3://{store.bucket}"}
    if c["session_token"]:
        options["SESSION_TOKEN"] = c["session_token"]
    con.execute(f"LOAD {literal(str(httpfs_extension()))}")
    con.execute(f"CREATE OR REPLACE SECRET {name} (TYPE s3, "
                + ", ".join(f"{k} {literal(v)}" for k, v in options.items())
                + f", USE_SSL {'true' if endpoint.scheme == 'https' else 'false'})")


def from_url(url: str) -> Store:
    """The Store of ``url`` with the endpoint and credentials of the environment (AWS_*)."""
    env = os.environ
    endpoint = env.get("AWS_ENDPOINT_URL", "").strip()
    if not endpoint:
        raise config.SettingError(f"AWS_ENDPOINT_URL is not set: the S3 endpoint of {url} "
                                  "(e.g. http://127.0.0.1:8333) is needed when WH_STORAGE_URL "
                                  "is set")
    try:
        config.URL.parse(endpoint)
    except ValueError:
        raise config.SettingError(f"AWS_ENDPOINT_URL={endpoint!r}: expected an http(s) URL "
                                  f"(the S3 endpoint of {url})") from None
    missing = [n for n in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY") if not env.get(n)]
    if missing:
        raise config.SettingError(f"{' and '.join(missing)} not set: the credentials for {url} "
                                  f"at {endpoint}")
    return Store(url, endpoint, env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"],
                 env.get("AWS_REGION", "").strip() or "us-east-1",
                 env.get("AWS_SESSION_TOKEN") or None)


def configured() -> Store | None:
    """The Store of ``WH_STORAGE_URL``, or None when it is unset (local files)."""
    url = config.settings().storage_url
    return from_url(url) if url else None

