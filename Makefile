# The two commands of the README: `make run` and `make test`. Both create the virtual
# environment first when it is missing (or when its requirements changed): `make run` with the
# runtime set (requirements.txt, what the production image installs), `make test` adds the test
# set (requirements-test.txt), `make bench` and `make soak` the benchmark set.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
BENCH_STAMP := $(VENV)/.installed-bench

.PHONY: help venv run test test-fast report bench soak mutate clean

help:
	@echo "make run    run the whole pipeline through Airflow (dag.test on embedded SQLite)"
	@echo "            WH_SNAPSHOT_DIR=../shared/data make run   replays recorded files offline"
	@echo "make test   run the test suite (on two workers; TEST_WORKERS=0 for one process)"
	@echo "make test-fast  only the tests that need no dbt build and no Airflow run (about 2 min;"
	@echo "            pytest -m 'not slow', the marker set in tests/conftest.py)"
	@echo "make report rebuild the data-quality report of the latest run from the stored results"
	@echo "make bench  speed and memory goals at 1x, 10x, 100x the recorded data, each measure 3 times"
	@echo "            interleaved with an anchor doing the same work (median, spread, load average);"
	@echo "            first run, no-op and new-release runs at 1x and 10x; goals and rows in"
	@echo "            bench/results/latest.json (never written by a failed run); object storage at 1x"
	@echo "            (~25 min on 2 idle cores); ARGS=\"--scales 1\" quick, ARGS=\"--repeats 1\","
	@echo "            ARGS=\"--only land,load,audit\" or \"--only noop,new-release\" or \"--only storage\", ARGS=--help"
	@echo "make soak   30 scheduled-style runs with random faults (kill, bad file, slow server, two"
	@echo "            at once), then the published marts against a clean run's (~30 min, not CI;"
	@echo "            bench/results/soak-<time>.json); ARGS=\"--runs 4\", ARGS=\"--seed S\", ARGS=--help"
	@echo "make mutate mutation testing (mutmut) of the parsers, landing and publish code in a clean"
	@echo "            copy of the work tree, 1 worker (~25 min): score per module and survivors;"
	@echo "            ARGS=\"--module landing\" (repeatable) for one module, ARGS=--list, ARGS=--help"
	@echo "make clean  remove the virtual environment and Airflow's local home"

$(STAMP): requirements.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	@touch $@

$(TEST_STAMP): requirements-test.txt $(STAMP)
	$(BIN)/python -m pip install --quiet -r requirements-test.txt
	@touch $@

$(BENCH_STAMP): requirements-bench.txt $(STAMP)
	$(BIN)/python -m pip install --quiet -r requirements-bench.txt
	@touch $@

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/python -m pipeline.run $(ARGS)

# Two pytest-xdist workers: most slow tests wait on a dbt or Airflow subprocess, so a second
# worker uses the core a serial run leaves idle (docs/decisions.md 76). TEST_WORKERS=0 runs serially.
# --dist loadscope: all the tests of a module on one worker, in file order. The end-to-end
# modules live through one installation in sequence (a first run, then a bad file, then a
# correction ...); split at a chunk boundary, a worker would start the sequence midway
# (decision 83).
TEST_WORKERS ?= 2
XDIST := -n $(TEST_WORKERS) --dist loadscope

test: $(TEST_STAMP)
	$(BIN)/python -m pytest $(XDIST) $(PYTEST_ARGS)

test-fast: $(TEST_STAMP)
	$(BIN)/python -m pytest $(XDIST) -m "not slow" $(PYTEST_ARGS)

report: $(STAMP)
	$(BIN)/python -m pipeline.report $(ARGS)

bench: $(BENCH_STAMP)
	$(BIN)/python -m bench.speed $(ARGS)

soak: $(BENCH_STAMP)
	$(BIN)/python -m bench.soak $(ARGS)

MUTATE_STAMP := $(VENV)/.installed-mutate

$(MUTATE_STAMP): requirements-mutate.txt $(TEST_STAMP)
	$(BIN)/python -m pip install --quiet -r requirements-mutate.txt
	@touch $@

mutate: $(MUTATE_STAMP)
	$(BIN)/python -m mutate.run $(ARGS)

clean:
	rm -rf $(VENV) .airflow
