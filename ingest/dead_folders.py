"""Folders named after the process that owns them (``<prefix><pid>``: a task's scratch, a
DuckDB spill folder, a read copy of the published warehouse), removed when that process is gone."""
from __future__ import annotations

import logging
import os
import shutil
from datetime import datetime, timezone
from pathlib import Path

log = logging.getLogger(__name__)


def reap_dead(root: Path, prefix: str, max_age_s: float | None = None) -> None:
    """Remove the folders ``<prefix><pid>`` under ``root`` of processes that died without removing
    their own (a worker killed mid-task): their pid is gone on this host, or (``max_age_s``) they
    are older than that."""
    if not root.is_dir():
        return
    now = datetime.now(timezone.utc).timestamp()
    for folder in root.glob(f"{prefix}*"):
        pid = folder.name.removeprefix(prefix)
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
            alive = True
        except ProcessLookupError:
            alive = False
        except PermissionError:
            alive = True
        try:
            old = max_age_s is not None and now - folder.stat().st_mtime > max_age_s
        except FileNotFoundError:
            continue
        if not alive or old:
            shutil.rmtree(folder, ignore_errors=True)
            log.info("removed %s, the folder of a process that is gone", folder)
