# Two commands on a fresh machine (see README.md):
#   make train   set up .venv from nothing, then run the main job (tools/train.py on the embedded shapes data)
#   make test    set up .venv from nothing, then lint and run the whole test suite
PY := .venv/bin/python

.PHONY: setup train test lint bench

setup:
	bash scripts/setup.sh

train: setup
	$(PY) tools/train.py

lint: setup
	$(PY) -m ruff check .

test: lint
	$(PY) -m pytest

bench: setup
	$(PY) tools/benchmark.py kernel
