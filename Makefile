# `make demo` and `make test` each set up everything from nothing first.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup demo test lint bench clean

setup: $(STAMP)

# torch first, pinned to the local CPU wheel; then the rest under the same constraints.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -c constraints.txt -e '.[dev,tflite,openvino,video,lightgbm,ray,hf]'
	touch $(STAMP)

demo: setup
	$(BIN)/modelpress demo --out runs/demo

test: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/pytest -q -m "not slow"

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

bench: setup
	$(BIN)/python benchmarks/bench_runtimes.py

clean:
	rm -rf $(VENV) runs
