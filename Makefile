# LingShift: `make repro` runs the offline pipeline, `make test` runs the tests.
# Both create the virtual environment (.venv) first if it is missing or stale.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: venv repro check paper-dry test test-fast lint bench bench-venv clean-venv resources

venv: $(STAMP)

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11 or run make PYTHON=/path/to/python3.11" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

## Run the pipeline of the active profile (dvc repro; offline by default) and say where the report is.
repro: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" dvc repro
	@$(BIN)/python -m pipeline summary
	@echo "Report: results/report.md (claims: results/claims.json, plots: results/plots/). See README 'Outputs'."

## Regression gate: this run's results vs the committed baseline (exit 1 on a regression).
check: $(STAMP)
	$(BIN)/python -m pipeline check

## The paper profile's whole DAG, without running anything (switches params.yaml there and back).
paper-dry: $(STAMP)
	$(BIN)/python -m pipeline profile paper
	PATH="$(CURDIR)/$(BIN):$$PATH" dvc repro --dry --force; rc=$$?; $(BIN)/python -m pipeline profile offline; exit $$rc

## Run the test suite (unit + integration on the real offline resources).
test: $(STAMP)
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not integration"

lint: $(STAMP)
	$(BIN)/ruff check pipeline app tests benchmarks

resources: $(STAMP)
	$(BIN)/python -m pipeline resources --fetch

## Benchmarks side by side with NeuroX 1.0.9 (its own environment; NeuroX installed --no-deps).
BENCH := .venv-bench
bench-venv: $(BENCH)/.installed

$(BENCH)/.installed: pyproject.toml benchmarks/requirements.txt
	$(PYTHON) -m venv $(BENCH)
	$(BENCH)/bin/python -m pip install --quiet -e . -r benchmarks/requirements.txt
	$(BENCH)/bin/python -m pip install --quiet --no-deps neurox==1.0.9
	@touch $@

## Needs the MiniLM POS store: run `make repro` first (or `dvc repro extract@minilm-base-pos-wsj`).
bench: $(BENCH)/.installed
	OMP_WAIT_POLICY=PASSIVE $(BENCH)/bin/python benchmarks/bench_extract.py --model-dir models/minilm/base \
	    --out benchmarks/results/extract.json
	OMP_WAIT_POLICY=PASSIVE $(BENCH)/bin/python benchmarks/bench_probe.py --store activations/minilm/base/pos-wsj \
	    --out benchmarks/results/probe.json

clean-venv:
	rm -rf $(VENV) $(BENCH)
