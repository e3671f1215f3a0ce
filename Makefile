# Task index: the README and CI call these targets and nothing else.
SHELL := /bin/bash
UV_VERSION := 0.13.9
UV := $(shell command -v uv 2>/dev/null || echo python3 -m uv)
export DAGSTER_HOME := $(CURDIR)
export DAGSTER_DISABLE_TELEMETRY := 1
export GX_ANALYTICS_ENABLED := false
export UV_COMPILE_BYTECODE := 1
# use the system certificate store (where a proxy's CA is installed) rather than uv's own
export UV_NATIVE_TLS := 1

.PHONY: demo test lint dev install refresh bench page clean-data uv

# uv itself comes from PyPI (pinned); everything else from uv.lock.
uv:
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --quiet "uv==$(UV_VERSION)" \
	  || python3 -m pip install --quiet --user --break-system-packages "uv==$(UV_VERSION)"

.venv/.installed: pyproject.toml uv.lock | uv
	$(UV) sync --frozen --compile-bytecode
	touch $@

install: .venv/.installed

## The main job: bundled synthetic SIRENE extract -> full refresh -> publication, then where it is.
demo: install
	$(UV) run observatoire demo

## One month on real or other data: make refresh MOIS=2026-11
refresh: install
	$(UV) run observatoire refresh --mois $(MOIS)

## The test suite (what CI runs).
test: install
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run lint-imports
	$(UV) run pytest -q -n auto --dist loadfile

lint: install
	$(UV) run ruff check . && $(UV) run ruff format --check . && $(UV) run lint-imports

## Dagster UI on http://127.0.0.1:3000 (asset graph, partitions, schedule).
dev: install
	$(UV) run dagster dev -h 127.0.0.1 -p 3000

## The observatory's web page and JSON API on http://127.0.0.1:8000 (after make demo or refresh).
page: install
	$(UV) run observatoire page --hote 127.0.0.1 --port 8000

## National-scale benchmark (not part of the tests): see benchmarks/README.md.
bench: install
	$(UV) run python benchmarks/run_benchmark.py --generate --scale departement

clean-data:
	rm -rf data/warehouse data/publication data/sources data/sirene data/.dagster
