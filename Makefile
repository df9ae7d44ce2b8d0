# The two commands of the README: `make demo` and `make test`. Both set up first (idempotent).
VENV  := .venv
STAMP := $(VENV)/.setup-stamp

.PHONY: setup demo test lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml scripts/setup.sh
	bash scripts/setup.sh
	touch $(STAMP)

demo: setup
	$(VENV)/bin/evoforge run

test: setup
	bash scripts/test-deps.sh
	$(VENV)/bin/python -m pytest -q

lint: setup
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV) runs .pytest_cache
