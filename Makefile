# Shortcuts quoted by README.md. Each target sets up .venv first (scripts/setup.sh is idempotent).
.PHONY: setup demo test test-all lint bench clean

setup:
	./scripts/setup.sh

demo: setup
	.venv/bin/python train.py

test: setup
	.venv/bin/python -m pytest -m "not slow" -n 2

test-all: setup
	.venv/bin/python -m pytest

lint: setup
	.venv/bin/ruff check .

bench: setup
	.venv/bin/python benchmarks/bench_clswgan.py

clean:
	rm -rf outputs multirun .cache .pytest_cache
