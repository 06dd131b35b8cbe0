# The two commands a user needs: `make demo` and `make test`. Both set themselves up.
PY := .venv/bin/python
SITE ?= config/examples/demo-estate.yaml
# e.g. make demo DEMO_ARGS="--ports 20000 --no-dashboard" (python -m edge.demo --help)
DEMO_ARGS ?=

.PHONY: setup demo test test-fast bench lint schema clean chaos soak

setup:
	@./scripts/bootstrap.sh

demo: setup
	$(PY) -m edge.demo --site $(SITE) $(DEMO_ARGS)

test: setup
	$(PY) -m pytest -q -p no:cacheprovider tests

test-fast: setup
	$(PY) -m pytest -q -x -m "not slow" tests

bench: setup
	$(PY) -m bench $(BENCH)

lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

schema: setup
	$(PY) -m edge.config.schema config/schema

clean:
	rm -rf .venv .venv-runtime build *.egg-info .pytest_cache .mypy_cache .ruff_cache

# Issue 17's chaos suite, full size (about 2 h): every fault scenario on real parts, the table in
# bench/results/chaos.json, then every parser fuzzed with FUZZ_EXAMPLES inputs and both OpenAPI
# specs with OPENAPI_EXAMPLES per operation. Shorter: make chaos CHAOS_ARGS="--profile short".
CHAOS_ARGS ?=
FUZZ_EXAMPLES ?= 100000
OPENAPI_EXAMPLES ?= 200
chaos: setup
	$(PY) -m chaos $(CHAOS_ARGS)
	GATEHOUSE_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) GATEHOUSE_OPENAPI_EXAMPLES=$(OPENAPI_EXAMPLES) \
		$(PY) -m pytest -q -p no:cacheprovider --timeout=0 tests/fuzz

# Not in CI: 2 h at 500 devices; RSS growth < 5 %, file descriptors flat (bench/results/soak.json).
SOAK_ARGS ?= --devices 500 --hours 2
soak: setup
	$(PY) -m chaos.soak $(SOAK_ARGS)
