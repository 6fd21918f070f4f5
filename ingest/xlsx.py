"""Reading xlsx workbooks: python-calamine's speed, openpyxl's values.

The parsers were written against ``openpyxl.load_workbook(read_only=True, data_only=True)`` and
``iter_rows(values_only=True)``. calamine reads the same workbooks several times faster (see
docs/decisions.md), but returns some values differently. ``open_workbook(...).rows(sheet)`` (or
``iter_rows``) returns what openpyxl returned, row for row:

- rows start at A1 and have openpyxl's shape: with a ``<dimension>``, every row as wide as it
  and no row past it; without one (openpyxl's write-only mode writes none), each row as wide as
  its last cell, ``()`` for a row element without cells and ``[]`` for a row missing from the
  XML. Sheet row ``n`` is ``rows[n - 1]``, also when a sheet starts with blank rows;
- an empty cell, which calamine gives as ``""``, is ``None``;
- numbers: calamine gives every number as a float, openpyxl an int for ``41`` and a float for
  ``2.5``: an integral float is an int again;
- a date cell at midnight, which calamine gives as a ``date``, is a ``datetime``.

Some differences cannot be undone from calamine's output, because it has lost them: a cell
holding an empty string and an empty cell both come out as ``""``; error cells (``#N/A``) come
out as ``""``; ``_x000D_`` escapes are decoded (openpyxl keeps them); text without
``xml:space="preserve"`` is stripped; ``5.0`` or ``1E+3`` is a float for openpyxl; cells typed
``t="d"`` (ISO dates) come out as ``date``; text in a number cell (openpyxl fails on it). A scan
of the sheet's XML and of the shared strings (4 MB at a time) finds any of these, and such a sheet
is read with openpyxl instead, so callers see openpyxl's values whatever the file.
``Workbook.read_with_openpyxl`` says which sheets were, and why.

Not covered, because finding them would take the cell styles: a date cell whose time of day is
not a whole second may differ by 1 ms (both round to the millisecond, from the same float); a
date-formatted cell holding a negative serial or one past year 9999 comes out as time 00:00 or a
float (openpyxl: a datetime before 1900, or '#VALUE!').

Errors: what calamine, the zip or the XML reject, when opening or reading, is a ``DataError``
(rule ``xlsx format``, "truncated or corrupt workbook (...)"); so is what openpyxl fails on when
a sheet is read with it. Memory: a worksheet is streamed (``Workbook._streamed``): its XML is
read once, about 4 MB at a time, each piece scanned as above and read by calamine as a small
workbook of its own, so that memory does not grow with the sheet (calamine itself holds a whole
sheet's cells: 1.3 GiB for the 100x benchmark workbook). A piece whose scan finds what calamine
reads differently switches the rest of the sheet to openpyxl (read-only mode, which streams).
calamine reads the pieces in threads, up to ``AHEAD`` pieces ahead of the one given: its parse
releases the GIL, so it runs on another core while the caller works on the rows before (an error
reading the XML ahead is raised where its rows would come); the XML itself is inflated in a
thread of its own, ``READ_AHEAD`` pieces ahead (zlib releases the GIL; decision 87).
``iter_blocks`` gives the rows a piece at a time (``RowBlock``: calamine's cells as it gave
them, for callers that read many cells at once; docs/decisions.md 77); ``iter_rows`` and
``rows`` are the same rows one by one.
"""
from __future__ import annotations

import collections
import io
import itertools
import logging
import posixpath
import queue
import re
import threading
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime
from typing import IO
from xml.etree import ElementTree

from python_calamine import CalamineWorkbook, SheetTypeEnum

from ingest.config import settings
from ingest.errors import DataError

log = logging.getLogger(__name__)

Row = tuple
_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
_PKG_REL = "{http://schemas.openxmlformats.org/package/2006/relationships}"
_CHUNK = 1 << 22  # the XML is scanned 4 MB at a time: a big sheet is never held as text

# <dimension ref="A1:GQ886"/> (or "A1"): openpyxl's height and width of the sheet.
_DIMENSION = re.compile(rb'<dimension ref="(?:[A-Z]{1,3}\d+:)?([A-Z]{1,3})(\d+)"')
_DIMENSION_ELEMENT = re.compile(rb"<dimension[^>]*>")
_EMPTY_SHEET = (b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
                b"<sheetData/></worksheet>")
_ROW_NUMBER = re.compile(rb'<row r="([^"]*)"')
_ROW = re.compile(rb'<row r="([^"]*)"[^>]*?(/?)>')
_ROW_WITHOUT_NUMBER = re.compile(rb'<row(?! r=")[ >/]')
_CELL_REF = re.compile(rb'<c r="([A-Z]{1,3})\d+"')
# Error cells (#N/A, #REF!) and ISO-date cells.
_ERROR_OR_ISO_DATE = re.compile(rb't="[ed]"')
# Cell values other than an optional sign and at most 15 digits or a decimal with a non-zero
# fraction (so: 5.0, exponents, spaces, 16 digits and more, text): the only ones whose number type
# or value calamine's float can change (checked one by one in _number_differs).
_NUMBER_CANDIDATE = re.compile(
    rb"<v>(?![-+]?+\d{0,15}+</v>|[-+]?+\d++\.\d*?[1-9]\d*+</v>)([^<]*)</v>")
_NUMBER = re.compile(rb"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
# Text calamine reads differently from openpyxl: an empty string (<si/>, <is></is>, <t/>,
# whitespace only), a <t> without xml:space="preserve" that starts or ends with whitespace
# (calamine strips it, also written as &#32;), a <t> with other attributes, an _xHHHH_ escape
# (calamine decodes it; openpyxl keeps it, but drops 'x005F_'). One pattern per start tag, so
# that each is searched for by its literal prefix.
_ODD_TEXT = (
    re.compile(rb'<t(?:/>|>\s*</t>|>(?:[ \t\r\n]|&#)|>[^<]*+(?<=[ \t\r\n;])</t>'
               rb'| xml:space="preserve"(?:/>|>\s*</t>)|\s(?!xml:space="preserve"[\s/>]))'),
    re.compile(rb"<is(?:\s*/>|>\s*</is>)"),
    re.compile(rb"<si(?:\s*/>|>\s*</si>|>\s*<(?:rPh|phoneticPr))"),
    re.compile(rb"x[0-9A-Fa-f]{4}_"),
)


def column_letter(index: int) -> str:
    """Spreadsheet column name of a 1-based column index: 1 -> A, 27 -> AA."""
    letters = ""
    while index > 0:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _column_index(letters: bytes) -> int:
    index = 0
    for ch in letters:
        index = index * 26 + ch - 64
    return index


def _corrupt(file_name: str, err: Exception) -> DataError:
    return DataError(file_name, "xlsx format",
                     f"truncated or corrupt workbook ({type(err).__name__}: {err})")


def _pieces(stream: IO[bytes], cut: bytes) -> Iterator[bytes]:
    """The stream in pieces of about _CHUNK bytes, each ending just before an occurrence of
    ``cut`` (a row or shared-string start tag), so that no element is split between two."""
    carry = b""
    while block := stream.read(_CHUNK):
        data = carry + block
        at = data.rfind(cut)
        if at <= 0:
            carry = data
            continue
        carry = data[at:]
        yield data[:at]
    if carry:
        yield carry


def _read_ahead(open_stream, cut: bytes, ahead: int) -> Iterator[bytes]:
    """``_pieces(open_stream(), cut)``, read and inflated in a thread of its own up to
    ``ahead`` pieces ahead of the one given: zlib releases the GIL while it inflates, so the
    sheet is unpacked on another core while the caller scans and reads the pieces before. An
    error reading the zip is raised where its piece would come, after the pieces before it."""
    ready: queue.Queue = queue.Queue(maxsize=max(1, ahead))
    stop = threading.Event()

    def read() -> None:
        try:
            with open_stream() as stream:
                for piece in _pieces(stream, cut):
                    ready.put(("piece", piece))
                    if stop.is_set():
                        return
            item = ("end", None)
        except BaseException as err:  # given to the caller, in its place
            item = ("error", err)
        ready.put(item)

    reader = threading.Thread(target=read, name="xlsx-read", daemon=True)
    reader.start()
    try:
        while True:
            kind, value = ready.get()
            if kind == "error":
                raise value
            if kind == "end":
                return
            yield value
    finally:
        stop.set()
        while reader.is_alive():  # unblock a put, then let the thread see stop
            try:
                ready.get(timeout=0.05)
            except queue.Empty:
                pass
        reader.join()


def _odd_text(xml: bytes) -> bool:
    return any(pattern.search(xml) for pattern in _ODD_TEXT)


def _number_differs(text: bytes, formula_text: bool) -> bool:
    """Would openpyxl's value of this <v> text differ from calamine's float made int when
    integral? openpyxl: int when the text has no '.', 'e' or 'E', else float. Text that is no
    number is the value of a t="str" formula cell, the same in both; in a sheet without such
    cells it is a number cell openpyxl fails on (calamine gives the text)."""
    stripped = text.strip()
    if not _NUMBER.fullmatch(stripped):
        return not formula_text
    if stripped != text:
        return True  # calamine gives such a number as the text itself
    value = float(stripped)
    if any(c in stripped for c in b".eE"):
        return value.is_integer()
    return int(stripped) != int(value)  # past 2**53: openpyxl keeps every digit


@dataclass
class _Shape:
    """openpyxl's rows of a sheet: ``height`` rows; with a ``<dimension>`` each ``width`` wide,
    without one (``widths`` not None) as wide as ``widths[sheet row]`` (the column of the row's
    last cell, 0 for a row element without cells; ``[]`` for a row not in the XML)."""

    height: int = 0
    width: int = 0
    widths: dict[int, int] | None = None


class _Scan:
    """The scan of a sheet's XML, one piece (``_pieces``) at a time: openpyxl's shape of each
    piece's rows, or why calamine cannot give openpyxl's values for the sheet."""

    def __init__(self) -> None:
        self.shape = _Shape()
        self.dimension: re.Match | None = None
        self.last = 0
        self.first = True

    def piece(self, piece: bytes) -> tuple[list[int], str | None]:
        """The sheet row numbers of the rows in ``piece`` (in order), or the reason."""
        shape = self.shape
        if self.first:
            self.first = False
            data_at = piece.find(b"<sheetData")
            if data_at < 0:
                return [], "no <sheetData> element (namespace prefix?)"
            self.dimension = _DIMENSION.search(piece, 0, data_at)
            if self.dimension is None and piece.find(b"<dimension", 0, data_at) >= 0:
                return [], "a <dimension> not written as A1:B2"
            if self.dimension is None:
                shape.widths = {}
            else:
                shape.width = _column_index(self.dimension.group(1))
        if _ROW_WITHOUT_NUMBER.search(piece):
            return [], "rows without a row number"
        last = self.last
        if shape.widths is None:  # only the row numbers matter
            numbers = _ROW_NUMBER.findall(piece)
            if not all(r.isdigit() for r in numbers):
                return [], "rows out of order or numbered oddly"
            numbers = [int(r) for r in numbers]
            if any(a >= b for a, b in zip([last] + numbers, numbers)):
                return [], "rows out of order or numbered oddly"
            last = numbers[-1] if numbers else last
        else:  # and the width of each
            numbers = []
            for row in _ROW.finditer(piece):
                if not row.group(1).isdigit() or int(row.group(1)) <= last:
                    return [], "rows out of order or numbered oddly"
                last = int(row.group(1))
                numbers.append(last)
                shape.widths[last] = 0 if row.group(2) else _last_cell(
                    piece, row.end(), piece.find(b"</row>", row.end()))
                if shape.widths[last] < 0:
                    return [], "cells without a reference"
        self.last = last
        if _ERROR_OR_ISO_DATE.search(piece):
            return [], "error cells (#N/A ...) or ISO-date cells"
        formula_text = b't="str"' in piece
        if any(_number_differs(m.group(1), formula_text)
               for m in _NUMBER_CANDIDATE.finditer(piece)):
            return [], "numbers written as 5.0, 1E+3, with spaces, past 2**53 or not numbers"
        if (formula_text or b"inlineStr" in piece) and _odd_text(piece):
            return [], "cell text that calamine reads differently (empty, escaped, unstripped)"
        return numbers, None

    def height(self) -> int:
        """openpyxl's number of rows: up to the last row, and no row past the dimension."""
        if self.dimension is None:
            return self.last
        return min(self.last, int(self.dimension.group(2)))


def _sheet_shape(stream: IO[bytes], shared_strings_differ: bool) -> _Shape | str:
    """openpyxl's shape of the sheet, or why calamine cannot give openpyxl's values for it."""
    scan = _Scan()
    for piece in _pieces(stream, b"<row "):
        _, reason = scan.piece(piece)
        if reason is not None:
            return reason
    if shared_strings_differ:
        return "shared strings that calamine reads differently (empty, escaped, unstripped)"
    scan.shape.height = scan.height()
    return scan.shape


def _last_cell(xml: bytes, start: int, end: int) -> int:
    """Column of the last cell element between start and end (one row's cells); 0 if there is
    none; -1 if it has no reference (openpyxl then counts cells) or the row does not end."""
    if end < 0:
        return -1
    at = xml.rfind(b"<c", start, end)
    while at >= 0 and xml[at + 2] not in b" >/":  # <color>, <charset> of rich text
        at = xml.rfind(b"<c", start, at)
    if at < 0:
        return 0
    ref = _CELL_REF.match(xml, at)
    return _column_index(ref.group(1)) if ref else -1


def _normalised(row: list) -> list:
    """calamine's cells as openpyxl's: "" -> None, integral float -> int, date -> datetime."""
    return [(int(v) if v.is_integer() else v) if v.__class__ is float else
            None if v == "" else
            datetime(v.year, v.month, v.day) if v.__class__ is date else v
            for v in row]


def normalised_cell(v: object) -> object:
    """One cell of calamine's as openpyxl gives it (``_normalised``, for a single cell)."""
    return ((int(v) if v.is_integer() else v) if v.__class__ is float else
            None if v == "" else
            datetime(v.year, v.month, v.day) if v.__class__ is date else v)


def _calamine_rows(sheet, shape: _Shape) -> Iterator[Row]:
    """The sheet's rows from calamine in openpyxl's shape. calamine's iter_rows starts at row 1
    but at the column of the first non-empty cell (``sheet.start``)."""
    start = sheet.start
    lead = [None] * (start[1] if start else 0)
    source = sheet.iter_rows() if start else iter(())
    for number in range(1, shape.height + 1):
        raw = next(source, None)
        if shape.widths is None:
            width = shape.width
        elif number not in shape.widths:
            yield []
            continue
        else:
            width = shape.widths[number]
            if width == 0:
                yield ()
                continue
        cells = lead + _normalised(raw) if raw is not None else []
        if len(cells) < width:
            cells.extend([None] * (width - len(cells)))
        yield tuple(cells[:width])


BLOCK_ROWS = 1024
"""Rows per block of a sheet that is not streamed by pieces (``Workbook.iter_blocks``)."""
AHEAD = 2
"""Pieces of a streamed sheet that calamine reads in threads ahead of the one being used: its
parse releases the GIL, so it runs on another core while the caller works on the rows before
(memory: about three pieces of XML and their cells, a few tens of MB)."""


READ_AHEAD = 2
"""Pieces of a streamed sheet's XML inflated ahead, in a thread of its own (``_read_ahead``)."""


class RowBlock:
    """Consecutive rows of a sheet from sheet row ``first``: ``row(i)`` is the row
    ``iter_rows`` gives for sheet row ``first + i``. A streamed piece keeps calamine's cells as
    calamine gave them (``raw``, not normalised: floats, ``""`` for empty), so that a caller can
    read many cells at once (a parser turning a row block's numeric cells into one numpy array);
    ``raw[i]`` is calamine's row from column ``len(lead)`` on (None: no cells) and
    ``widths[i]`` its width in openpyxl's shape (-1: a row missing from the XML of a sheet
    without a ``<dimension>``, given as ``[]``). A block of rows already in openpyxl's values
    (``normalised``: sheets read whole or with openpyxl) has them in ``raw``."""

    __slots__ = ("first", "raw", "widths", "lead", "normalised")

    def __init__(self, first: int, raw: list, widths: list[int], lead: list,
                 normalised: bool = False) -> None:
        self.first = first
        self.raw = raw
        self.widths = widths
        self.lead = lead
        self.normalised = normalised

    def __len__(self) -> int:
        return len(self.raw)

    def row(self, i: int) -> Row:
        if self.normalised:
            return self.raw[i]
        width = self.widths[i]
        if width < 0:
            return []
        raw = self.raw[i]
        cells = self.lead + _normalised(raw) if raw is not None else []
        if len(cells) < width:
            cells.extend([None] * (width - len(cells)))
        return tuple(cells[:width])

    def rows(self, start: int = 0) -> Iterator[Row]:
        return (self.row(i) for i in range(start, len(self.raw)))


def _blocks_of(rows: Iterator[Row], first: int = 1) -> Iterator[RowBlock]:
    """Rows already in openpyxl's values, as blocks of BLOCK_ROWS."""
    while chunk := list(itertools.islice(rows, BLOCK_ROWS)):
        yield RowBlock(first, chunk, [len(r) for r in chunk], [], normalised=True)
        first += len(chunk)


class Workbook:
    """An open workbook: ``sheetnames`` in workbook order; ``rows(name)`` (a list) and
    ``iter_rows(name)`` (one row at a time) as openpyxl's ``iter_rows(values_only=True)`` gave
    them. Errors reading it are ``DataError`` (rule ``xlsx format``), like opening it."""

    def __init__(self, content: bytes, file_name: str):
        self.file_name = file_name
        self._content = content
        self.read_with_openpyxl: dict[str, str] = {}
        """sheet -> why it was read with openpyxl rather than calamine."""
        self._openpyxl = None
        self._package: dict[str, bytes] | None = None
        try:
            self._book = CalamineWorkbook.from_filelike(io.BytesIO(content))
            self._zip = zipfile.ZipFile(io.BytesIO(content))
            self._types = {m.name: m.typ for m in self._book.sheets_metadata}
            self.sheetnames: list[str] = list(self._book.sheet_names)
        except Exception as err:  # zip, XML and calamine errors all mean the same thing here
            self.close()
            raise _corrupt(file_name, err) from err
        try:
            self._parts, shared_strings = self._locate_parts()
            self._shared_strings_differ = False
            if shared_strings is not None:
                with self._zip.open(shared_strings) as stream:
                    self._shared_strings_differ = any(
                        _odd_text(piece) for piece in _pieces(stream, b"<si"))
        except Exception as err:  # an unusual package: every sheet is read with openpyxl
            log.info("%s: sheet parts not found (%s: %s)", file_name, type(err).__name__, err)
            self._parts, self._shared_strings_differ = {}, True

    def _locate_parts(self) -> tuple[dict[str, str], str | None]:
        """Sheet name -> its XML part, and the shared strings part, from the package's
        relationships."""
        def rels(part: str) -> dict[str, tuple[str, str]]:
            folder, name = posixpath.split(part)
            root = ElementTree.fromstring(self._zip.read(posixpath.join(folder, "_rels",
                                                                        name + ".rels")))
            out = {}
            for r in root.iter(f"{_PKG_REL}Relationship"):
                target = r.get("Target", "")
                out[r.get("Id")] = (r.get("Type", ""), posixpath.normpath(
                    target[1:] if target.startswith("/") else posixpath.join(folder, target)))
            return out

        book = next(target for kind, target in rels("").values()
                    if kind.endswith("/officeDocument"))
        book_rels = rels(book)
        root = ElementTree.fromstring(self._zip.read(book))
        parts = {s.get("name"): book_rels.get(s.get(f"{_REL}id"), ("", ""))[1]
                 for s in root.iter(f"{_MAIN}sheet")}
        shared = next((target for kind, target in book_rels.values()
                       if kind.endswith("/sharedStrings") and target in self._zip.NameToInfo),
                      None)
        return parts, shared

    def rows(self, name: str) -> list[Row]:
        return list(self.iter_rows(name))

    def iter_rows(self, name: str) -> Iterator[Row]:
        """The sheet's rows, one at a time: those of ``iter_blocks``."""
        return (row for block in self.iter_blocks(name) for row in block.rows())

    def iter_blocks(self, name: str) -> Iterator[RowBlock]:
        """The sheet's rows in blocks (``RowBlock``), in order. A worksheet calamine can read
        faithfully is streamed (``_streamed``): its XML is read once, a piece of about 4 MB at a
        time, each piece scanned and then read by calamine on its own (in threads, ahead), so
        that memory does not grow with the sheet, one block per piece; any other sheet is
        scanned whole, then read by calamine or openpyxl, in blocks of BLOCK_ROWS rows."""
        if (not self._shared_strings_differ and self._types.get(name) == SheetTypeEnum.WorkSheet
                and self._parts.get(name) in self._zip.NameToInfo):
            return self._guarded(self._streamed(name))
        try:
            shape = self._shape(name)
            if not isinstance(shape, str):
                return self._guarded(_blocks_of(
                    _calamine_rows(self._book.get_sheet_by_name(name), shape)))
        except Exception as err:  # zip, XML and calamine errors all mean the same thing here
            raise _corrupt(self.file_name, err) from err
        self.read_with_openpyxl[name] = shape
        log.info("%s [%s]: read with openpyxl: %s", self.file_name, name, shape)
        return self._guarded(_blocks_of(self._openpyxl_rows(name)))

    def _shape(self, name: str) -> _Shape | str:
        if self._types.get(name) != SheetTypeEnum.WorkSheet:
            return f"sheet type {self._types.get(name)}"
        part = self._parts.get(name)
        if not part or part not in self._zip.NameToInfo:
            return "sheet XML not found from the workbook's relationships"
        with self._zip.open(part) as stream:
            return _sheet_shape(stream, self._shared_strings_differ)

    def _scanned_pieces(self, name: str, scan: _Scan, pool: ThreadPoolExecutor):
        """The sheet's XML in pieces (``_pieces``, cut before a row), each scanned (``_Scan``)
        in order, and, when the scan found nothing odd, handed to calamine in ``pool`` at once:
        (piece, the rows in it, why not calamine or None, head, the future of calamine's rows).
        An error reading the XML comes as a last item ``("error", err)``, in its place, so that
        the rows before it are given first, as when nothing was read ahead."""
        head = b""
        part = self._parts[name]
        pieces = _read_ahead(lambda: self._zip.open(part), b"<row ", READ_AHEAD)
        try:
            for piece in pieces:
                first = scan.first
                numbers, reason = scan.piece(piece)
                if reason is not None:
                    yield piece, numbers, reason, head, None
                    continue
                if first:
                    at = piece.find(b">", piece.find(b"<sheetData")) + 1
                    head = _DIMENSION_ELEMENT.sub(b"", piece[:at])
                    if head.endswith(b"/>"):  # <sheetData/>: no rows
                        head = head[:-2] + b">"
                    piece = piece[at:]
                future = None
                if numbers:
                    end = piece.find(b"</sheetData>")
                    rows_xml = piece if end < 0 else piece[:end]
                    future = pool.submit(self._piece_rows, name, head, rows_xml)
                yield piece, numbers, None, head, future
        except Exception as err:  # zip, XML: raised where the rows reach it
            yield "error", err
        finally:
            pieces.close()  # the reading thread stops

    def _streamed(self, name: str) -> Iterator[RowBlock]:
        """The rows of a worksheet from its XML in pieces (``_pieces``, cut before a row): each
        piece is scanned as ``_sheet_shape`` scans the whole (``_Scan``), then read by calamine
        as the only rows of a small workbook with this one's shared strings and styles
        (``_piece_workbook``; in threads, up to AHEAD pieces ahead), and its rows are shaped as
        ``_calamine_rows`` shapes them, one ``RowBlock`` per piece. A piece whose scan finds
        what calamine reads differently switches the rest of the sheet to openpyxl, from the
        row after the last one given (the rows before it were read from pieces whose scan
        found nothing: openpyxl's values)."""
        scan = _Scan()
        given = 0  # rows given
        ended = False
        self._package_parts()  # read once, before any thread
        pool = ThreadPoolExecutor(max_workers=max(1, AHEAD), thread_name_prefix="xlsx-piece")
        ahead: collections.deque = collections.deque()
        pieces = self._scanned_pieces(name, scan, pool)
        try:
            while True:
                while len(ahead) <= AHEAD:
                    item = next(pieces, None)
                    if item is None:
                        break
                    ahead.append(item)
                    if item[0] == "error":
                        break
                if not ahead:
                    return
                item = ahead.popleft()
                if item[0] == "error":
                    raise item[1]
                piece, numbers, reason, head, future = item
                if reason is not None:
                    self.read_with_openpyxl[name] = reason
                    if ended:  # past openpyxl's last row: nothing more to give
                        continue
                    log.info("%s [%s]: read with openpyxl from row %d: %s", self.file_name,
                             name, given + 1, reason)
                    yield from _blocks_of(itertools.islice(self._openpyxl_rows(name), given,
                                                           None), given + 1)
                    return
                if ended or not numbers:
                    continue
                values, start = future.result()
                shape = scan.shape
                cap = int(scan.dimension.group(2)) if scan.dimension is not None else None
                lead = [None] * (start[1] if start else 0)
                first = given + 1
                raws: list = []
                widths: list[int] = []
                for number in numbers:
                    if cap is not None and number > cap:  # openpyxl stops at the dimension
                        while given < cap:
                            given += 1
                            raws.append(None)
                            widths.append(shape.width)
                        ended = True
                        break
                    for gap in range(given + 1, number):  # rows not in the XML
                        given += 1
                        raws.append(None)
                        widths.append(-1 if shape.widths is not None else shape.width)
                    given += 1
                    width = shape.width if shape.widths is None else shape.widths[number]
                    at = number - 1 - start[0] if start else -1
                    raws.append(values[at] if width and 0 <= at < len(values) else None)
                    widths.append(width)
                if raws:
                    yield RowBlock(first, raws, widths, lead)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            pieces.close()

    def _piece_rows(self, name: str, head: bytes, rows_xml: bytes) -> tuple[list, tuple | None]:
        """calamine's rows of one piece of the sheet (from its first non-empty cell) and where
        they start (0-based row and column), or ``([], None)`` for a piece without values."""
        book = CalamineWorkbook.from_filelike(io.BytesIO(self._piece_workbook(
            name, head + rows_xml + b"</sheetData></worksheet>")))
        try:
            sheet = book.get_sheet_by_name(name)
            start = sheet.start
            return (sheet.to_python(skip_empty_area=True) if start else []), start
        finally:
            book.close()

    def _piece_workbook(self, name: str, sheet_xml: bytes) -> bytes:
        """A workbook of this one's package parts (workbook, relationships, shared strings,
        styles ...) in which sheet ``name`` is ``sheet_xml`` and every other sheet is empty;
        stored, not compressed. The parts are read from the zip once."""
        target = self._parts[name]
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
            for part, data in self._package_parts().items():
                z.writestr(part, sheet_xml if part == target else data or _EMPTY_SHEET)
        return out.getvalue()

    def _package_parts(self) -> dict[str, bytes]:
        """The package's parts but the sheets (empty), read from the zip once."""
        if self._package is None:
            sheets = set(self._parts.values())
            self._package = {info.filename: (b"" if info.filename in sheets
                                             else self._zip.read(info.filename))
                             for info in self._zip.infolist() if not info.is_dir()}
        return self._package

    def _openpyxl_rows(self, name: str) -> Iterator[Row]:
        import openpyxl  # only for sheets calamine cannot read faithfully

        if self._openpyxl is None:
            self._openpyxl = openpyxl.load_workbook(io.BytesIO(self._content),
                                                    read_only=True, data_only=True)
        yield from self._openpyxl[name].iter_rows(values_only=True)

    def _guarded(self, rows: Iterator[Row]) -> Iterator[Row]:
        try:
            yield from rows
        except Exception as err:  # zip, XML, calamine and openpyxl errors alike
            raise _corrupt(self.file_name, err) from err

    def close(self) -> None:
        for handle in ("_book", "_zip", "_openpyxl"):
            if getattr(self, handle, None) is not None:
                try:
                    getattr(self, handle).close()
                except Exception:  # closing twice, or after a failed open
                    pass
                setattr(self, handle, None)

    def __enter__(self) -> Workbook:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_workbook(content: bytes, file_name: str) -> Workbook:
    """Open an xlsx workbook from its bytes. Anything calamine, the zip or the XML reject is a
    ``DataError`` (rule ``xlsx format``: truncated or corrupt workbook) naming ``file_name``; a
    workbook that unpacks to more than ``WH_MAX_XLSX_UNPACKED_MB`` is refused before it is read."""
    check_unpacked_size(content, file_name, settings().max_xlsx_unpacked_bytes,
                        "WH_MAX_XLSX_UNPACKED_MB")
    return Workbook(content, file_name)


def check_unpacked_size(content: bytes, file_name: str, cap: int, setting: str) -> None:
    """Refuse a workbook whose parts unpack to more than ``cap`` bytes, from the sizes its zip
    directory declares, before anything is decompressed (reading a part stops at its declared
    size and checks its CRC, so a part cannot unpack to more than it declares)."""
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            parts = [(info.file_size, info.filename) for info in archive.infolist()]
    except (zipfile.BadZipFile, OSError, ValueError) as err:
        raise _corrupt(file_name, err) from err
    total = sum(size for size, _ in parts)
    if total > cap:
        size, name = max(parts)
        raise DataError(file_name, "xlsx unpacked size",
                        f"its parts unpack to {total:,} bytes ({name}: {size:,}) from "
                        f"{len(content):,}; the cap is {cap:,} ({setting}): not parsed")
