"""``make mutate``: mutation testing (mutmut 3) of the parsers and the bytes-moving code.

Not part of CI (it is slow). The run happens in a clean copy of the work tree (the files git
tracks or would track: no .venv, landing/, warehouse/, earlier mutants/), so a run never touches
the checkout and always starts from nothing. mutmut copies that tree into ``mutants/``, rewrites
every function of the modules below into variants (trampolines), learns which of the module's
fast tests call which function, then runs, per mutant, only the tests that call the mutated
function. A mutant is *killed* when a test fails, *survived* when they all pass, *no tests*
when none of the selected tests calls the function.

    python -m mutate.run                      # the default modules (about 20-25 min, 1 worker)
    python -m mutate.run --module landing     # one module (repeatable); --list names them
    MUTATE_MODULES=landing,warehouse make mutate

Prints the score per module and overall and the surviving mutants; the diff of each survivor is
written to ``<workdir>/survivors.txt`` and the numbers to ``<workdir>/summary.json``. The copy is
kept after the run, so ``cd <workdir> && ../path/to/.venv/bin/mutmut show NAME`` (or ``browse``)
works on it.
"""
from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Module:
    path: str
    tests: tuple[str, ...]
    """The fast test files that exercise it (no Airflow, no dbt, no full pipeline run)."""
    deselect: tuple[str, ...] = ()
    """Tests of those files left out: each mutant of a function runs every selected test that
    calls it, and a few seconds per mutant of a parser called by every test is hours."""


MODULES = {
    "frontex": Module("ingest/sources/frontex/source.py",
                      ("tests/sources/frontex/test_frontex_parse.py", "tests/sources/frontex/test_frontex_layouts.py")),
    # Not test_eurostat_fast.py (it compares the two parsers on every variant: ~12 s per mutant
    # of parse_observations) nor the two tests that parse every recorded file (3 s per mutant).
    "eurostat_formats": Module("ingest/sources/eurostat/formats.py", ("tests/sources/eurostat/test_eurostat_parse.py",), (
        "tests/sources/eurostat/test_eurostat_parse.py::test_every_label_in_the_recorded_files_maps",
        "tests/sources/eurostat/test_eurostat_parse.py::test_parsing_is_a_pure_function_of_the_bytes")),
    "eurostat_fast": Module("ingest/sources/eurostat/sdmx_csv_duckdb.py", ("tests/sources/eurostat/test_eurostat_fast.py",)),
    "landing": Module("ingest/landing.py",
                      ("tests/test_landing.py", "tests/test_file_states.py")),
    "warehouse": Module("pipeline/warehouse.py",
                        ("tests/test_warehouse.py", "tests/test_housekeeping.py")),
}
DEFAULT = ("frontex", "eurostat_formats", "landing", "warehouse")
"""``eurostat_fast`` only on request: its SQL checks are called by every test of its file (about
35 more minutes)."""
EXTRA_TESTS = ("tests/test_mutants_killed.py",)
"""Tests written to kill survivors of an earlier run; they join every module's selection
(mutmut runs, per mutant, only those that call the mutated function)."""
ALSO_COPY = ("dbt_project", "expectations", "pytest.ini")
"""What the tests read besides ``ingest``, ``pipeline`` and ``tests`` (the seeds, the audit)."""

DETECTED = {"killed", "timeout", "caught by type check"}
STATUS = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests",
          34: "skipped", 36: "timeout", 24: "timeout", -24: "timeout", 152: "timeout",
          255: "timeout", 37: "caught by type check", 2: "interrupted", None: "not checked",
          -9: "segfault", -11: "segfault"}


def default_workdir() -> Path:
    tag = hashlib.sha256(str(REPO_ROOT).encode()).hexdigest()[:8]
    return Path(tempfile.gettempdir()) / f"wh-mutate-{tag}"


def clean_copy(workdir: Path) -> None:
    """The work tree as git sees it (tracked and new files, nothing ignored) in ``workdir``."""
    if workdir.exists():
        shutil.rmtree(workdir)
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=REPO_ROOT, check=True, capture_output=True).stdout
    for rel in filter(None, listed.decode().split("\0")):
        src = REPO_ROOT / rel
        if not src.is_file():  # deleted in the work tree, not yet in the index
            continue
        dst = workdir / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst, follow_symlinks=False)


def write_config(workdir: Path, modules: list[Module]) -> None:
    tests = sorted({t for m in modules for t in m.tests}
                   | {t for t in EXTRA_TESTS if (workdir / t).is_file()})
    lines = ["[mutmut]", "source_paths =", "    ingest", "    pipeline", "only_mutate ="]
    lines += [f"    {m.path}" for m in modules]
    lines += ["also_copy ="] + [f"    {p}" for p in ALSO_COPY]
    lines += ["pytest_add_cli_args_test_selection ="] + [f"    {t}" for t in tests]
    lines += ["pytest_add_cli_args =", "    -p", "    no:cacheprovider"]
    lines += [f"    --deselect={t}" for m in modules for t in m.deselect]
    lines += ["use_git_change_detection = false", ""]
    cfg = workdir / "setup.cfg"
    with cfg.open("a", encoding="utf-8") as fh:
        fh.write("\n".join(lines))


def results(workdir: Path, module: Module) -> dict[str, str]:
    meta = workdir / "mutants" / (module.path + ".meta")
    if not meta.is_file():
        return {}
    codes = json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"]
    return {name: STATUS.get(code, "suspicious") for name, code in codes.items()}


def function_of(mutant: str) -> str:
    """``ingest.landing.xǁLandingǁland__mutmut_3`` -> ``Landing.land``."""
    name = mutant.rsplit("__mutmut_", 1)[0].rsplit(".", 1)[-1]
    return name.removeprefix("x_").removeprefix("xǁ").replace("ǁ", ".")


def score(counts: Counter) -> tuple[int, int, float]:
    total = sum(n for s, n in counts.items() if s != "skipped")
    detected = sum(counts[s] for s in DETECTED)
    return detected, total, (100.0 * detected / total if total else 0.0)


def report(workdir: Path, chosen: dict[str, Module], elapsed: float) -> int:
    summary: dict[str, dict] = {}
    overall: Counter = Counter()
    undetected: dict[str, dict[str, str]] = {}
    print("\nmutation score: killed / mutants ('no tests': none of the selected tests calls the "
          "function; kinds of the rest below)")
    print(f"{'module':<18} {'killed':>7} {'survived':>9} {'no tests':>9} {'timeout':>8} "
          f"{'total':>6} {'score':>7}")
    for key, module in chosen.items():
        res = results(workdir, module)
        counts = Counter(res.values())
        overall.update(counts)
        detected, total, pct = score(counts)
        print(f"{key:<18} {counts['killed']:>7} {counts['survived']:>9} {counts['no tests']:>9} "
              f"{counts['timeout']:>8} {total:>6} {pct:>6.1f}%")
        undetected[key] = {n: res[n] for n in sorted(
            (n for n, s in res.items() if s not in DETECTED | {"skipped"}),
            key=lambda n: (function_of(n), int(n.rsplit("_", 1)[-1])))}
        summary[key] = {"file": module.path, "counts": dict(counts), "score": round(pct, 1)}
    detected, total, pct = score(overall)
    print(f"{'overall':<18} {overall['killed']:>7} {overall['survived']:>9} "
          f"{overall['no tests']:>9} {overall['timeout']:>8} {total:>6} {pct:>6.1f}%")
    if elapsed:
        print(f"({elapsed / 60:.1f} min)")

    diffs = diff_texts(workdir, [n for names in undetected.values() for n in names])
    with (workdir / "survivors.txt").open("w", encoding="utf-8") as fh:
        for key, names in undetected.items():
            source = (workdir / chosen[key].path).read_text(encoding="utf-8")
            logs, raises = _spans(source)
            lines = source.splitlines()
            kinds = {n: kind_of(diffs.get(n, ""), lines, logs, raises) for n in names}
            summary[key]["undetected"] = {n: {"status": st, "kind": kinds[n]}
                                          for n, st in names.items()}
            if not names:
                continue
            by_kind = Counter(kinds.values())
            print(f"\nsurviving mutants of {chosen[key].path}: {len(names)} ("
                  + ", ".join(f"{by_kind[k]} {k}" for k in ("logic", "message", "log")
                              if by_kind[k]) + "); 'log': only a log call changes, 'message': "
                  "only the text of an error")
            for kind in ("logic", "message", "log"):
                by_function: dict[str, list[str]] = defaultdict(list)
                for n in names:
                    if kinds[n] == kind:
                        by_function[function_of(n)].append(
                            n.rsplit("_", 1)[-1] + ("" if names[n] == "survived"
                                                    else f" ({names[n]})"))
                if by_function:
                    print(f"  {kind}:")
                for function, ns in by_function.items():
                    print(f"    {function}: {', '.join(ns)}")
            for n, st in names.items():
                fh.write(f"# {n}: {st}, {kinds[n]}\n{diffs.get(n, '')}\n\n")
    (workdir / "summary.json").write_text(json.dumps(
        {"modules": summary, "overall": {"counts": dict(overall), "score": round(pct, 1)},
         "minutes": round(elapsed / 60, 1)}, indent=2, ensure_ascii=False), encoding="utf-8")
    print(f"\ndiffs of the surviving mutants: {workdir / 'survivors.txt'}; numbers: "
          f"{workdir / 'summary.json'}; one mutant: cd {workdir} && "
          f"{Path(sys.executable).parent / 'mutmut'} show <module>.<x_function>__mutmut_<n>")
    return 0


def _spans(source: str) -> tuple[set[int], set[int]]:
    """Lines of log calls and lines of raise statements of a module."""
    logs, raises = set(), set()
    for node in ast.walk(ast.parse(source)):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "log"):
            logs.update(range(node.lineno, node.end_lineno + 1))
        elif isinstance(node, ast.Raise):
            raises.update(range(node.lineno, node.end_lineno + 1))
    return logs, raises


def literal_free(text: str) -> str:
    """A line with every string literal emptied."""
    return re.sub(r"([\"'])(?:\\.|(?!\1).)*\1", '""', text.strip())


def kind_of(diff: str, lines: list[str], logs: set[int], raises: set[int]) -> str:
    """``log`` when the mutant only changes a log call (cosmetic), ``message`` when it only
    changes a string inside a raise (the error text, not whether it is raised), else ``logic``."""
    removed = [ln[1:].strip() for ln in diff.splitlines()
               if ln.startswith("-") and not ln.startswith("---")]
    added = [ln[1:] for ln in diff.splitlines() if ln.startswith("+") and not ln.startswith("+++")]
    if not removed:
        return "logic"
    where = [{n for n, text in enumerate(lines, 1) if text.strip() == r} for r in removed]
    if all(w and w <= logs for w in where):
        return "log"
    if (all(w and w <= raises for w in where) and len(removed) == len(added)
            and [literal_free(r) for r in removed] == [literal_free(a) for a in added]):
        return "message"
    return "logic"


def diff_texts(workdir: Path, names: list[str]) -> dict[str, str]:
    """The diff of each mutant, read by mutmut itself in the run's folder."""
    if not names:
        return {}
    code = ("import json, sys\n"
            "from mutmut.mutation.diff_apply import get_diff_for_mutant\n"
            "out = {}\n"
            "for n in json.load(sys.stdin):\n"
            "    try:\n"
            "        out[n] = get_diff_for_mutant(n)\n"
            "    except Exception as err:  # noqa: BLE001 - the names still print\n"
            "        out[n] = f'(no diff: {err})'\n"
            "print(json.dumps(out))\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=workdir, input=json.dumps(names),
                          capture_output=True, text=True)
    if done.returncode != 0:
        print(f"(diffs not read: {done.stderr.strip().splitlines()[-1:]})")
        return {}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make mutate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--module", action="append", choices=sorted(MODULES),
                        help="a module to mutate (repeatable; default: every module, or "
                             "MUTATE_MODULES=a,b)")
    parser.add_argument("--list", action="store_true", help="list the modules and their tests")
    parser.add_argument("--workdir", type=Path, default=Path(os.environ.get("MUTATE_DIR") or
                                                              default_workdir()),
                        help="where the clean copy goes (default: %(default)s, or MUTATE_DIR)")
    parser.add_argument("--jobs", type=int, default=int(os.environ.get("MUTATE_JOBS", "1")),
                        help="mutants tested at once (default 1, or MUTATE_JOBS)")
    parser.add_argument("--report-only", action="store_true",
                        help="print the score of the last run in --workdir, run nothing")
    args = parser.parse_args(argv)
    if args.list:
        for key, m in MODULES.items():
            print(f"{key:<18}{'' if key in DEFAULT else ' (not by default)'} {m.path:<28} "
                  f"{' '.join(m.tests)}" + (f" (less {len(m.deselect)} slow tests)"
                                            if m.deselect else ""))
        return 0
    names = args.module or [n.strip() for n in os.environ.get("MUTATE_MODULES", "").split(",")
                            if n.strip()] or list(DEFAULT)
    unknown = [n for n in names if n not in MODULES]
    if unknown:
        parser.error(f"unknown module(s) {unknown}; choose from {sorted(MODULES)}")
    chosen = {n: MODULES[n] for n in names}
    workdir = args.workdir.resolve()
    if args.report_only:
        return report(workdir, chosen, 0.0)

    # The tests find the recorded files through these (conftest's default, ../shared/data
    # beside the repository, would point beside the copy instead).
    env = dict(os.environ)
    env.setdefault("WH_SNAPSHOT_DIR", str((REPO_ROOT.parent / "shared" / "data").resolve()))
    env.setdefault("WH_SHARED_DIR", str((REPO_ROOT.parent / "shared").resolve()))
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    print(f"clean copy of {REPO_ROOT} in {workdir}; modules: {', '.join(chosen)}; "
          f"{args.jobs} worker(s)")
    clean_copy(workdir)
    write_config(workdir, list(chosen.values()))
    log_path = workdir / "mutmut.log"
    start = time.monotonic()
    with log_path.open("w", encoding="utf-8") as log:
        done = subprocess.run([sys.executable, "-m", "mutmut", "run", "--max-children",
                               str(args.jobs)], cwd=workdir, env=env, stdout=log,
                              stderr=subprocess.STDOUT)
    elapsed = time.monotonic() - start
    if done.returncode != 0:
        tail = log_path.read_text(encoding="utf-8", errors="replace")[-3000:]
        print(f"mutmut failed (exit {done.returncode}); the end of {log_path}:\n{tail}")
        return done.returncode
    return report(workdir, chosen, elapsed)


if __name__ == "__main__":
    sys.exit(main())
