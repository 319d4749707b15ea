# The two entry points of the README. Both are idempotent: the venv is installed from
# the lock files (requirements.lock: the runtime; requirements-dev.lock: the runtime and
# the test tools) only when they or pyproject.toml change, and services that already
# answer are left alone. `make lock` regenerates both lock files with uv.
VENV ?= .venv
PYTHON ?= python3
PIP := $(VENV)/bin/pip install -q --disable-pip-version-check
RUNTIME := $(VENV)/.runtime
STAMP := $(VENV)/.installed

.PHONY: demo test install lint services-up services-down bench soak faults lock docs

demo: $(RUNTIME)
	$(VENV)/bin/stream-app demo

# The whole suite, then the tests that touch Redis again on a Redis Cluster of three
# masters with a replica each (STREAM_APP_REDIS_CLUSTER=true, started on port 17000).
CLUSTER_TESTS := tests/integration/test_counters.py tests/integration/test_scripts.py tests/integration/test_rules.py \
	tests/integration/test_reader.py tests/integration/test_layout_migration.py \
	tests/integration/test_live_ops.py tests/integration/test_subscribing.py

test: $(STAMP)
	$(VENV)/bin/ruff check stream_app tests benchmarks examples
	$(VENV)/bin/mypy
	$(VENV)/bin/pytest
	STREAM_APP_TEST_REDIS_CLUSTER=1 $(VENV)/bin/pytest $(CLUSTER_TESTS)

install: $(RUNTIME)

# The runtime only (what `make demo` needs): the pinned dependencies, then the package.
$(RUNTIME): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) -r requirements.lock
	$(PIP) --no-deps -e .
	touch $(RUNTIME)

# The runtime and the test tools (what `make test` needs).
$(STAMP): requirements-dev.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) -r requirements-dev.lock
	$(PIP) --no-deps -e '.[dev]'
	touch $(STAMP) $(RUNTIME)

# Both lock files from pyproject.toml's bounds, for Python 3.11 on Linux x86_64 (uv in a
# venv of its own, so the project's venv stays as locked).
lock:
	$(PYTHON) -m venv .venv-lock
	.venv-lock/bin/pip install -q --disable-pip-version-check 'uv>=0.4'
	.venv-lock/bin/uv pip compile -q pyproject.toml --python-version 3.11 \
		--python-platform x86_64-unknown-linux-gnu -o requirements.lock
	.venv-lock/bin/uv pip compile -q pyproject.toml --extra dev --python-version 3.11 \
		--python-platform x86_64-unknown-linux-gnu -o requirements-dev.lock

docs: $(STAMP)
	$(VENV)/bin/mkdocs build --strict

lint: $(STAMP)
	$(VENV)/bin/ruff check stream_app tests benchmarks examples
	$(VENV)/bin/mypy

services-up: $(STAMP)
	$(VENV)/bin/stream-app services up

services-down: $(STAMP)
	$(VENV)/bin/stream-app services down

# About 30 minutes: every figure of docs/benchmarks.md's table, side by side, a worker
# filled with 1M contacts restarted, two sharing 1M contacts with one SIGKILLed (without
# and with a standby replica), and the cost of waiting for a Redis replica.
bench: $(STAMP)
	$(VENV)/bin/stream-app services up
	$(VENV)/bin/stream-app bench --state-contacts 1000000 --failover-contacts 1000000 \
		--failover-session-timeout 6 --json bench.json
	$(VENV)/bin/python -m benchmarks.state_size
	$(VENV)/bin/python -m benchmarks.replica_wait

# 10 minutes, 3 workers joining, leaving and SIGKILLed; prints its figures.
soak: $(STAMP)
	$(VENV)/bin/stream-app services up
	$(VENV)/bin/python -m benchmarks.soak --seconds 600 --callbacks 40000

# About 30 minutes: every fault of benchmarks/faults.py (the cluster ones on 3 brokers and a
# Redis Cluster), 3 runs each, then broker SIGKILL 10 times in a row under the conditions
# that reproduced the hang (3,000 callbacks, G 30 s, hit 12-13.5 s in); prints a table per
# matrix (see docs/operations.md, The fault matrix).
faults: $(STAMP)
	$(VENV)/bin/python -m benchmarks.faults --runs 3
	$(VENV)/bin/python -m benchmarks.faults --faults broker-sigkill --runs 10 --seed 100 \
		--callbacks 3000 --grace 30 --hit-window 0.4,0.45
