# ABAIR-flow: `make demo` runs the main job on embedded defaults, `make test` runs the tests.
# Both create .venv and install everything on a fresh machine (the pinned CPU torch first, so pip
# never pulls a multi-GB CUDA build).

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
TORCH_PIN := torch==2.13.0
STAMP := $(VENV)/.installed
TEST_ENV := PREFECT_SERVER_ANALYTICS_ENABLED=false PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS=90 \
	PREFECT_LOGGING_LEVEL=WARNING MLFLOW_ENABLE_ASYNC_LOGGING=false OMP_NUM_THREADS=2

.PHONY: install demo test test-slow lint gallery photos benchmarks clean stack stack-down

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet $(TORCH_PIN)
	$(PIP) install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(TEST_ENV) $(VENV)/bin/abair demo

test: $(STAMP)
	$(TEST_ENV) $(PY) -m pytest -q

test-slow: $(STAMP)
	$(TEST_ENV) $(PY) -m pytest -q -m slow

lint: $(STAMP)
	$(VENV)/bin/ruff check abair_core tasks flows tests benchmarks scripts

gallery: $(STAMP)
	$(PY) scripts/degradation_gallery.py

# The 74-photo training pool of the `small` recipe and benchmark (Debian packages via apt-get; needs a
# current package list: `apt-get update` once). Idempotent; never committed.
photos:
	bash scripts/fetch_training_photos.sh photos

stack: $(STAMP)
	infra/local/stack-up.sh

stack-down:
	infra/local/stack-down.sh

clean:
	rm -rf $(VENV) abair-work .pytest_cache
