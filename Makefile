PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck unit bench soak clean test-packages

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/escalade db upgrade
	$(BIN)/escalade serve --host 127.0.0.1 --port 8000

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

# Debian packages some tests drive as real processes (Prometheus and Alertmanager for the
# intake tests). Installed when missing, as root with apt; never fails the build: the
# tests that need a missing binary skip and say so.
TEST_PACKAGES := prometheus:/usr/bin/prometheus prometheus-alertmanager:/usr/bin/prometheus-alertmanager
test-packages:
	@missing=""; for p in $(TEST_PACKAGES); do [ -x "$${p#*:}" ] || missing="$$missing $${p%%:*}"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian packages for tests:$$missing"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing) >/tmp/escalade-test-packages.log 2>&1 \
	      || echo "WARNING: could not install$$missing (see /tmp/escalade-test-packages.log): their tests will be skipped" >&2; \
	  else \
	    echo "WARNING: missing$$missing and cannot install (not root or no apt-get): their tests will be skipped" >&2; \
	  fi; \
	fi

unit: $(STAMP) test-packages
	$(BIN)/pytest -q -m "not slow"

test: lint typecheck unit

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run_all

# longer crash (5,000 escalations, 12 SIGKILLs) and fuzzing runs
soak: $(STAMP)
	ESCALADE_SOAK=1 $(BIN)/pytest -q -m slow tests
	ESCALADE_SOAK=1 $(BIN)/pytest -q tests/test_policy_fuzz.py tests/test_business_time_properties.py tests/test_sla_clocks.py tests/test_oncall_schedule.py tests/store/test_memory_equivalence.py tests/concurrency tests/test_api_schemathesis.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
