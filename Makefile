# One entry point: `make serve` runs the master on the embedded default, `make test` runs every
# test. Both create the virtual environment and install what they need first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install serve test bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

serve: install
	$(BIN)/farm serve

test: install
	$(BIN)/lint-imports
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The benchmark table (PostgreSQL + Redis too when FARM_BENCH_POSTGRES_URL and
# FARM_BENCH_REDIS_URL are set). BENCH_ARGS=--quick for a shorter run.
bench: install
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) farm-data .pytest_cache .hypothesis
