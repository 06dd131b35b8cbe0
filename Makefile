# The two commands a user needs: `make demo` and `make test`. Both set themselves up.
PY := .venv/bin/python
SITE ?= config/examples/demo-estate.yaml
# e.g. make demo DEMO_ARGS="--ports 20000 --no-dashboard" (python -m edge.demo --help)
DEMO_ARGS ?=

.PHONY: setup demo test test-fast bench lint schema clean

setup:
	@./scripts/bootstrap.sh

demo: setup
	$(PY) -m edge.demo --site $(SITE) $(DEMO_ARGS)

test: setup
	$(PY) -m pytest -q -p no:cacheprovider tests

test-fast: setup
	$(PY) -m pytest -q -x -m "not slow" tests

bench: setup
	$(PY) -m bench

lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

schema: setup
	$(PY) -m edge.config.schema config/schema

clean:
	rm -rf .venv build *.egg-info .pytest_cache .mypy_cache .ruff_cache
