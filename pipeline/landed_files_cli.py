"""The landed-file commands of ``python -m pipeline.run`` (no Airflow needed): ``files`` lists
every landed file with its state, ``reject`` rejects one by hand, ``readmit`` lets a rejected
one be loaded again. The states and the rules are ``pipeline.files``'; this module only reads
the arguments and prints."""
from __future__ import annotations

import argparse
import sys

from ingest import catalog
from ingest.config import settings
from ingest.landing import Landing

STATES = ["landed", "loaded", "published", "superseded", "rejected"]


def add_commands(sub: argparse._SubParsersAction) -> None:
    """The ``files``, ``reject`` and ``readmit`` subcommands, on ``sub``."""
    listing = sub.add_parser("files", help="list landed files with their state")
    listing.add_argument("--source", choices=sorted(catalog.BY_NAME))
    listing.add_argument("--state", choices=STATES)
    reject = sub.add_parser("reject", help="reject a landed file by hand, with a reason")
    reject.add_argument("file", help="landing path, file name or sha256 prefix")
    reject.add_argument("--reason", required=True, help="why (kept in landing/states.jsonl)")
    readmit = sub.add_parser("readmit", help="let a rejected file be loaded again")
    readmit.add_argument("file", help="landing path, file name or sha256 prefix")
    readmit.add_argument("--accept-suspicious", action="store_true",
                         help="the file was held as suspicious (a change against the previous "
                              "release beyond WH_SUSPICIOUS_CHANGE_SHARE): publish it on purpose")


def files_command(args: argparse.Namespace) -> int:
    """Print every landed file (of ``args.source``, in ``args.state``) with its state."""
    from pipeline import files

    try:
        every = files.states()
    except files.BrokenWarehouse as err:
        print(f"files: {err}", file=sys.stderr)
        return 2
    found = [f for f in every
             if (args.source is None or f.entry.source == args.source)
             and (args.state is None or f.state == args.state)]
    if not found:
        print(f"no landed files{' matching' if args.source or args.state else ''} in "
              f"{Landing(settings().landing_dir).location()}")
        return 0
    width = max(len(f.entry.path) for f in found)
    print(f"{'state':<11} {'landing file':<{width}} {'source':<20} {'release':<12} detail")
    for f in found:
        print(f"{f.state:<11} {f.entry.path:<{width}} {f.entry.source:<20} {f.release:<12} "
              f"{f.detail}")
    counts = {}
    for f in found:
        counts[f.state] = counts.get(f.state, 0) + 1
    print(f"\n{len(found)} files: " + ", ".join(f"{n} {state}" for state, n in counts.items()))
    return 0


def reject_command(args: argparse.Namespace) -> int:
    """Reject ``args.file`` by hand, with ``args.reason``."""
    from pipeline import files

    try:
        entry = files.reject_by_hand(args.file, args.reason)
    except (LookupError, ValueError) as err:
        print(f"reject: {err}", file=sys.stderr)
        return 2
    print(f"rejected {entry.path}: {args.reason}\nIt stays in "
          f"{Landing(settings().landing_dir).location()}; the next "
          "run publishes the warehouse without it (make run).")
    return 0


def readmit_command(args: argparse.Namespace) -> int:
    """Let rejected file ``args.file`` be loaded again at the next run."""
    from pipeline import files

    try:
        entry = files.readmit(args.file, accept_suspicious=args.accept_suspicious)
    except (LookupError, ValueError) as err:
        print(f"readmit: {err}", file=sys.stderr)
        return 2
    print(f"re-admitted {entry.path}"
          + (" (accepted as suspicious: its change against the previous release is published on "
             "purpose)" if args.accept_suspicious else "")
          + ": the next run loads it again (make run).")
    return 0


COMMANDS = {"files": files_command, "reject": reject_command, "readmit": readmit_command}
"""Subcommand name -> the function that runs it (returns the exit status)."""
