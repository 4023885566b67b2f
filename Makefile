# Two commands on a machine with only Python 3.11+: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# pytest processes for `make test`: the suite mostly waits on servers, so more processes than cores pay
# (tests/conftest.py keeps each module in one process and the load tests one at a time).
TEST_PROCESSES ?= 3

.PHONY: setup run test lint browser bench soak loadtest clean

$(STAMP): pyproject.toml sdk/python/pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "EventPlane needs Python 3.11+"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	$(BIN)/pip install -q -e sdk/python
	touch $(STAMP)

setup: $(STAMP)

run: setup
	$(BIN)/eventplane dev

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The browser tests drive Debian's chromium (no browser download is possible here): installed when missing.
browser:
	@test -x /usr/bin/chromium || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo 'installing chromium (Debian) for the browser tests'; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo 'make test needs chromium for the browser tests: sudo apt-get install -y chromium'; exit 1; fi; }

test: lint browser
	@command -v node >/dev/null || { echo 'make test needs Node 18+ for the JS SDK (sdk/js): install nodejs'; exit 1; }
	node --test sdk/js/test/*.test.mjs  # the unit tests; tests/sdk/js runs sdk/js/test/integration against a real stack
	$(BIN)/pytest -q -n $(TEST_PROCESSES) --dist loadgroup

clean:
	-$(BIN)/eventplane servers stop
	rm -rf $(VENV) .eventplane

bench: setup
	$(BIN)/python -m loadtests.bench $(BENCH_ARGS)

# SOAK_SECONDS (default 600) and SOAK_RATE (events/s; default half the last full bench's pipeline row).
soak: setup
	$(BIN)/python -m loadtests.soak $(SOAK_ARGS)

loadtest: setup
	$(BIN)/python -m loadtests.loadtest $(LOADTEST_ARGS)
