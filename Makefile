# The two set-up commands of the README: `make demo` and `make test`. Everything else is optional.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP_PY := $(VENV)/.installed
STAMP_NPM := node_modules/.installed

.PHONY: demo serve test lint bench clean

$(STAMP_PY): requirements.txt requirements-dev.txt
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $@

$(STAMP_NPM): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

.PHONY: deps
deps: $(STAMP_PY) $(STAMP_NPM)

test: deps
	$(PY) -m ruff check .
	$(PY) -m mypy .
	$(PY) -m pytest -n 2 -q

lint: deps
	$(PY) -m ruff check .
	$(PY) -m mypy .

demo: deps
	$(PY) -m devstack.demo

serve: deps
	$(PY) -m devstack.serve

bench: deps
	$(PY) -m benchmarks.run_all

clean:
	rm -rf $(VENV) node_modules .local .pytest_cache .mypy_cache .ruff_cache
