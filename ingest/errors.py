"""Errors that mean "the data is wrong", as opposed to "the network or the machine failed".

Orchestration treats them differently: a data error fails the task without retrying (the same
bytes fail the same way), anything else is retried.
"""
from __future__ import annotations


class DataError(Exception):
    """Bad input: names the file, the rule it broke and, where there is one, the row."""

    def __init__(self, file: str, rule: str, detail: str, row: int | None = None):
        self.file = file
        self.rule = rule
        self.detail = detail
        self.row = row
        where = f"{file}, row {row}" if row is not None else file
        super().__init__(f"{where}: [{rule}] {detail}")


class DownloadError(DataError):
    """The publisher answered, but not with what we asked for (HTML instead of a workbook,
    a file over the size cap, a page without the expected link)."""
