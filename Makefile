# Two commands for a fresh machine: `make demo` and `make test`. Everything else builds on them.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_STAMP := $(VENV)/.installed-demo

.PHONY: install demo test lint typecheck bench soak audit audit-offline clean kafka-jars

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip setuptools
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

# the demo needs the package and its sandbox (embedded broker, moto) only: no linters, type checkers or stubs
$(DEMO_STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[sandbox]'
	@touch $(DEMO_STAMP)

install: $(STAMP)

demo: $(DEMO_STAMP)
	$(BIN)/responder demo

lint: $(STAMP)
	$(BIN)/ruff check
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/bandit -q -c pyproject.toml -r responder

typecheck: $(STAMP)
	$(BIN)/mypy

# Real Apache Kafka for the tests: Maven fetches the broker's jars once into ~/.cache/responder (no Java: Tansu).
kafka-jars: $(STAMP)
	$(BIN)/python -m responder.sandbox.kafka_jars

# pytest-xdist workers for `make test`, each with its own broker and moto server (docs/development.md); -n 0 runs
# in-process. `--dist load` hands out single tests: the scope-based modes (loadscope, loadfile, loadgroup) keep one
# test per node id, and schemathesis' cases share theirs, so 3 of the 4 intake operations' tests would not run.
PYTEST_WORKERS ?= 3
test: $(STAMP) lint kafka-jars
	$(BIN)/python -m pytest -m "not soak" -n $(PYTEST_WORKERS) --dist load $(PYTEST_ARGS)

# each as docs/development.md runs them: this tree on the path (`bench.*` helpers, and not another tree's install)
bench: $(STAMP)
	@for b in bench/[!_]*.py; do echo "== $$b"; PYTHONPATH=. $(BIN)/python $$b || exit 1; done

# The long fault forms; the fault table is printed and written to $(FAULT_REPORT). SOAK_TIMEOUT (e.g. 90m) bounds
# the run: `timeout --kill-after=60` sends pytest SIGTERM, then SIGKILL. Cutting it is safe: every process a test
# starts (service workers, brokers, JVMs) dies with pytest, even SIGKILLed (responder/sandbox/lifeline.py), so a cut
# run leaves none running; it leaves no fault table (docs/development.md). `--foreground` keeps pytest in make's
# process group, so Ctrl-C still stops it (without it, the terminal's SIGINT reaches make only).
FAULT_REPORT ?= .responder/fault-report.md
SOAK_TIMEOUT ?=
soak: $(STAMP)
	RESPONDER_FAULT_REPORT=$(FAULT_REPORT) $(if $(SOAK_TIMEOUT),timeout --foreground --kill-after=60 $(SOAK_TIMEOUT) )\
	  $(BIN)/python -m pytest -m soak $(PYTEST_ARGS)
	@cat $(FAULT_REPORT)

# Known vulnerabilities in the installed dependencies. Needs the PyPI/OSV advisory service, which this CI
# cannot reach (docs/security.md), so it is not part of `make test`.
audit: $(STAMP)
	$(BIN)/pip-audit --strict --progress-spinner off --skip-editable

# The same offline, against a local copy of https://github.com/pypa/advisory-database (docs/security.md)
audit-offline: $(STAMP)
	@test -n "$(OSV_DB)" || { echo "audit-offline: set OSV_DB to a checkout of pypa/advisory-database"; exit 3; }
	$(BIN)/python tools/osv_audit.py --db $(OSV_DB)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .responder
