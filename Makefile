# LingShift: `make repro` runs the offline pipeline, `make test` runs the tests.
# Both create the virtual environment (.venv) first if it is missing or stale.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: venv repro check deps paper-dry serve serve-prod wheelhouse base-image container-smoke test test-fast lint bench bench-api load-test attack-test bench-venv clean-venv resources

venv: $(STAMP)

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11 or run make PYTHON=/path/to/python3.11" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

## Run the pipeline of the active profile (offline by default) and say where the report is: dvc.yaml's stages,
## JOBS at once (default: the cores, as memory allows; pipeline/parallel.py), DVC's bookkeeping serial.
## `dvc repro` runs the same stages one at a time.
JOBS ?=
repro: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pipeline run $(if $(JOBS),-j $(JOBS))
	@$(BIN)/python -m pipeline summary
	@echo "Report: results/report.md (claims: results/claims.json, plots: results/plots/). See README 'Outputs'."

## Regression gate: this run's results vs the committed baseline (exit 1 on a regression).
check: $(STAMP)
	$(BIN)/python -m pipeline check

## Each DVC stage's import closure (derived from the code) and the deps dvc.yaml lacks (tests/test_dvc_deps.py).
deps: $(STAMP)
	$(BIN)/python tests/importgraph.py

## The paper profile's whole DAG, without running anything (switches params.yaml there and back).
paper-dry: $(STAMP)
	$(BIN)/python -m pipeline profile paper
	PATH="$(CURDIR)/$(BIN):$$PATH" dvc repro --dry --force; rc=$$?; $(BIN)/python -m pipeline profile offline; exit $$rc

## Serve the API and the results page with gunicorn (gunicorn.conf.py; default http://127.0.0.1:8000).
serve: $(STAMP)
	OMP_WAIT_POLICY=PASSIVE $(BIN)/gunicorn -c gunicorn.conf.py

## The production way (README "Serving in production"): nginx (apt-get install nginx) in front of gunicorn,
## buffering slow clients; listens on LINGSHIFT_BIND (default 127.0.0.1:8000). `make serve` is the dev server.
serve-prod: $(STAMP)
	GUNICORN=$(CURDIR)/$(BIN)/gunicorn OMP_WAIT_POLICY=PASSIVE scripts/serve-prod.sh

## Docker (see README "Docker"): the wheelhouse the image installs from, a registry-free Debian base
## (debootstrap + docker import; root), and the container smoke test (build, pipeline, serve, probe).
wheelhouse:
	scripts/make-wheelhouse.sh

base-image:
	scripts/make-base-image.sh

container-smoke:
	scripts/container-smoke.sh

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

## API latency: POST /v1/probe p50 per variant (needs `make repro` first for the fine-tuned variants).
bench-api: $(STAMP)
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python -m pytest -q -p no:cacheprovider benchmarks/bench_api.py \
	    --benchmark-json benchmarks/results/api_probe.json

## API load test: gunicorn + locust headless, 16 users for 30 s (benchmark environment).
load-test: $(BENCH)/.installed
	OMP_WAIT_POLICY=PASSIVE $(BENCH)/bin/python benchmarks/load_api.py --users 16 --duration 30

## Attacks through the front end (benchmarks/attack_api.py; nginx installed): a 64-probe burst on a fresh server,
## a gunicorn worker killed mid-load, 200 slow connections; each writes benchmarks/results/attack_<mode>.json.
## ATTACK_ROOT: the checkout to serve (its weights and trained probes, from make repro).
ATTACK_ROOT ?= .
attack-test: $(STAMP)
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python benchmarks/attack_api.py burst --root $(ATTACK_ROOT)
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python benchmarks/attack_api.py kill --root $(ATTACK_ROOT)
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python benchmarks/attack_api.py slow --root $(ATTACK_ROOT)

clean-venv:
	rm -rf $(VENV) $(BENCH)
