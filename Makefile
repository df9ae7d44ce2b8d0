# The two commands of the README: `make demo` and `make test`. Both set up first (idempotent).
VENV  := .venv
STAMP := $(VENV)/.setup-stamp

.PHONY: setup demo test test-fast lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml scripts/setup.sh
	bash scripts/setup.sh
	touch $(STAMP)

demo: setup
	$(VENV)/bin/evoforge run

test: setup
	bash scripts/test-deps.sh
	$(VENV)/bin/python -m pytest -q

# Day-to-day: everything but the end-to-end runs marked slow (a few minutes on 2 cores).
test-fast: setup
	bash scripts/test-deps.sh
	$(VENV)/bin/python -m pytest -q -m "not slow"

lint: setup
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV) runs .pytest_cache
