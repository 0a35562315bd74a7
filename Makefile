# Two commands for a fresh machine: `make demo` and `make test`. Everything else builds on them.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint typecheck bench soak clean kafka-jars

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/responder demo

lint: $(STAMP)
	$(BIN)/ruff check
	$(BIN)/lint-imports
	$(BIN)/mypy

typecheck: $(STAMP)
	$(BIN)/mypy

# Real Apache Kafka for the tests: Maven fetches the broker's jars once into ~/.cache/responder (no Java: Tansu).
kafka-jars: $(STAMP)
	$(BIN)/python -m responder.sandbox.kafka_jars

test: $(STAMP) lint kafka-jars
	$(BIN)/python -m pytest -m "not soak" $(PYTEST_ARGS)

bench: $(STAMP)
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

soak: $(STAMP)
	$(BIN)/python -m pytest -m soak $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .responder
