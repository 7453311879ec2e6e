# One entry point: `make serve` runs the master on the embedded default, `make check` runs the
# whole gate (lint, format, types, import contracts, every test). Each target creates the virtual
# environment and installs what it needs first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The layers that need no real processes: the domain on fakes, the adapters' contracts, HTTP.
FAST_TESTS := tests/unit tests/contract tests/http tests/agent

.PHONY: install blender addon serve check lint format types contracts test test-fast bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

# Blender as a module (bpy, ~370 MB) for the tests that render for real; the master does not
# need it, so `make serve` does not install it.
blender: $(VENV)/.blender

$(VENV)/.blender: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[blender]' \
		|| echo "bpy could not be installed: the Blender tests will be skipped"
	touch $@

# The Blender add-on as Blender installs it (Edit > Preferences > Add-ons > Install from Disk):
# a zip whose top-level folder is the package farm_blender/. The standard library only.
ADDON_ZIP ?= dist/farm_blender.zip

addon:
	@mkdir -p $(dir $(ADDON_ZIP))
	$(PYTHON) -c 'import pathlib, sys, zipfile; \
		files = sorted(pathlib.Path("src/farm_blender").glob("*.py")); \
		archive = zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED); \
		[archive.write(f, f.relative_to("src")) for f in files]; archive.close()' $(ADDON_ZIP)

serve: install
	$(BIN)/farm serve

# The gate CI runs: every step must pass.
check: lint types contracts test

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

# Rewrite the code into the project's format and apply ruff's safe fixes.
format: install
	$(BIN)/ruff check --fix src tests bench
	$(BIN)/ruff format src tests bench

types: install
	$(BIN)/mypy

contracts: install
	$(BIN)/lint-imports

# The suite runs on TEST_WORKERS processes (pytest-xdist): its end-to-end tests spend most of
# their time waiting on real processes. TEST_WORKERS=0 runs it in this process.
TEST_WORKERS ?= 2

test: install blender contracts
	$(BIN)/python -m pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

test-fast: install blender
	$(BIN)/python -m pytest $(FAST_TESTS) $(PYTEST_ARGS)

# The benchmark table (PostgreSQL + Redis too when FARM_BENCH_POSTGRES_URL and
# FARM_BENCH_REDIS_URL are set), with PyFarm master 0.8.5 beside farm (built once in
# .bench-cache/). BENCH_ARGS=--quick for a shorter run, --only-heartbeats for the heartbeat
# scenarios alone.
bench: install
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) farm-data .pytest_cache .hypothesis .mypy_cache .ruff_cache
