# Two entry points for a fresh machine: `make run` (the examples through the agent) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
TORCH  ?= torch==2.13.0

.PHONY: setup system-deps run test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The CPU torch wheel goes in first so that nothing later pulls a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e ".[dev,serve,local,bench,ray]"
	touch $@

# The tool sandbox's system layers: bubblewrap (namespaces) and libseccomp2 (the seccomp filter),
# from Debian when missing and apt-get can run as root (as on CI). Without them the sandbox
# refuses to run tools and says which layer is missing. PostgreSQL's server likewise, for the
# service's tests on PostgreSQL (tests/pg_cluster.py; without it they are skipped).
system-deps:
	@if command -v bwrap >/dev/null 2>&1 && /sbin/ldconfig -p 2>/dev/null | grep -q libseccomp.so.2 \
	  && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap libseccomp2 postgresql >/dev/null; \
	else echo "warning: install bubblewrap and libseccomp2 for the tool sandbox (see tool_maker/layers.py), and postgresql for the service's PostgreSQL tests"; fi

setup: system-deps $(VENV)/.installed

run: setup
	$(BIN)/formalist examples examples

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports  # the layering contracts in pyproject.toml [tool.importlinter]

test: setup lint
	$(BIN)/pytest -q -n 2 --dist loadfile

bench: setup
	$(BIN)/python benchmarks/pipeline_overhead.py
	$(BIN)/python benchmarks/sandbox_overhead.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
