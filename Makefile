# rnn-tasks: `make sin2cos` (or any task) and `make test` work on a fresh clone.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TASKS := $(notdir $(patsubst %/,%,$(dir $(wildcard tasks/*/train.py))))
ARGS ?=
NPROC ?= 1

.PHONY: help test lint bench data clean $(TASKS)

help:  ## list the targets
	@echo "make <task> [ARGS=\"--flag value\"] [NPROC=2]   train and evaluate one task; tasks: $(TASKS)"
	@grep -E '^[a-z]+:.*## ' Makefile | sed -E 's/:.*## /\t/' | awk -F'\t' '{printf "make %-33s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements.txt
	@echo "Creating $(VENV) and installing the pinned requirements (a few minutes, once)"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --progress-bar on -r requirements.txt
	touch $@

# NPROC=2 (or more) trains in that many processes under torchrun (see README). NPROC, the
# flags, the data and the run folder are checked first in one process (--preflight), so a
# mistake is one line and no process starts; --help is that process's, printed once.
# core.torchrun is torch's torchrun, its tracebacks (a failed process, Ctrl-C) one line.
$(TASKS): $(VENV)/.installed
ifeq ($(NPROC),1)
	$(PY) -m tasks.$@.train $(ARGS)
else
	@case '$(NPROC)' in ''|*[!0-9]*) false;; *) [ '$(NPROC)' -ge 1 ];; esac || { \
	  echo "error: NPROC must be a number of processes, 1 or more; got '$(NPROC)'" >&2; \
	  exit 2; }
	@$(PY) -m tasks.$@.train $(ARGS) --preflight
	@set -- $(ARGS); for a; do case "$$a" in -h|--help) exit 0;; esac; done; \
	echo "torchrun --standalone --nproc-per-node $(NPROC) -m tasks.$@.train $(ARGS)"; \
	$(PY) -m core.torchrun --standalone --nproc-per-node $(NPROC) -m tasks.$@.train $(ARGS)
endif

# The suite runs in one process per core (pytest-xdist): most of its time is tasks
# training in subprocesses, which share the cores well. worksteal: each process starts on
# half of the tests and an idle one takes from the end of the other's queue; xdist's
# default hands out the first tests in one block, the long ones (tests/conftest.py) to one
# process.
test: $(VENV)/.installed  ## create the environment, run the test suite and ruff
	$(PY) -m pytest -n auto --dist worksteal --durations=15
	$(VENV)/bin/ruff check .

lint: $(VENV)/.installed  ## ruff over the whole tree
	$(VENV)/bin/ruff check .

# bench writes results/ and docs/figures/, then README.md and docs/ from them; its exit
# status is the targets' (1 when one is missed), after the README is brought up to date.
bench: $(VENV)/.installed  ## speed and quality targets as ratios in one run; results/, README
	$(PY) -m bench $(ARGS)

data: $(VENV)/.installed  ## fetch every dataset into data/ (checksummed)
	$(PY) -m core.data

clean:  ## remove runs/ (the environment stays)
	rm -rf runs
