"""Reading the text of a CSV file the way every source needs it: named errors for what is not a
CSV (an HTML error page, an XML envelope, binary or empty content), and the encodings publishers
use."""
from __future__ import annotations

import logging

from ingest.errors import DataError

log = logging.getLogger(__name__)


def decode(content: bytes, file_name: str) -> str:
    """Text of a CSV file: UTF-8 (with or without BOM), else Windows-1252, which older Data
    Browser exports used (``S\\xe3o Tom\\xe9 and Pr\\xedncipe``)."""
    if not content.strip():
        raise DataError(file_name, "csv format", "an empty file")
    head = content[:512].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html")) or b"<html" in head:
        raise DataError(file_name, "csv format",
                        "an HTML page, not a CSV file (an error page served with status 200?)")
    if head.startswith(b"<"):
        if b"<queued" in content[:4096].lower() or b"syncresponse" in head:
            raise DataError(file_name, "synchronous answer",
                            "the publisher queued the extraction for asynchronous delivery instead "
                            "of answering with data (the query is too large or costly to answer "
                            "at once)")
        raise DataError(file_name, "csv format",
                        f"an XML document, not a CSV file (starts {content[:80]!r})")
    utf16 = _utf16(content)
    if utf16 is not None:
        raise DataError(file_name, "text encoding",
                        f"UTF-16 text ({utf16}); expected UTF-8 (or Windows-1252, as older "
                        "Data Browser exports): save or export the file as UTF-8 CSV")
    if b"\x00" in content[:4096]:
        raise DataError(file_name, "csv format", "binary content, not a CSV file")
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError:
        log.info("%s is not UTF-8; read as Windows-1252 (older Data Browser export)", file_name)
        return content.decode("cp1252")


def _utf16(content: bytes) -> str | None:
    """How ``content`` shows it is UTF-16 (a byte-order mark, or ASCII text with a NUL beside
    every character), else None."""
    if content.startswith((b"\xff\xfe", b"\xfe\xff")):
        order = "little" if content.startswith(b"\xff\xfe") else "big"
        return f"byte-order mark of {order}-endian UTF-16"
    head = content[:4096]
    if len(head) >= 8:
        even, odd = head[0::2], head[1::2]
        if odd.count(0) > 0.9 * len(odd) and even.count(0) < 0.1 * len(even):
            return "little-endian, without a byte-order mark"
        if even.count(0) > 0.9 * len(even) and odd.count(0) < 0.1 * len(odd):
            return "big-endian, without a byte-order mark"
    return None
