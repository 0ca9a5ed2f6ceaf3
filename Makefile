# Two commands on a fresh machine:  `make demo` (the whole job end to end) and `make test`.
PY := .venv/bin/python
CONFIG ?= models/kws_mamba.yaml
RUN ?= runs/$(basename $(notdir $(CONFIG)))

.PHONY: setup demo train test lint clean

setup:
	@bash tools/setup_env.sh

## demo: generate data, train, evaluate on generated and real clips (more steps join as they land)
demo: setup
	$(PY) tools/train.py --config $(CONFIG) --out $(RUN)

train: setup
	$(PY) tools/train.py --config $(CONFIG) --out $(RUN)

## test: the whole test suite (what CI runs)
test: setup
	$(PY) -m ruff check tools tests
	$(PY) -m pytest

lint: setup
	$(PY) -m ruff check tools tests

clean:
	rm -rf build runs .pytest_cache
