# LingShift: `make repro` runs the offline pipeline, `make test` runs the tests.
# Both create the virtual environment (.venv) first if it is missing or stale.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: venv repro repro-full check deps paper-dry rehearse serve serve-prod wheelhouse wheelhouse-cuda base-image image-cuda container-smoke container-smoke-cuda test test-fast lint bench bench-check bench-baseline test-slow bench-api load-test attack-test bench-venv clean-venv resources

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

## The offline-full profile (README "The offline-full profile"): MiniLM + MPNet-base, Brown POS, the paper's
## fine-tuning recipe; hours on a CPU, resumable, in a git worktree under .full/; results -> results/offline-full/.
repro-full: $(STAMP)
	PYTHON="$(CURDIR)/$(BIN)/python" scripts/repro-full.sh

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

## The paper profile rehearsed (README "Rehearsing the paper profile"): its whole DAG, offline, on random stand-ins
## (scripts/make-paper-mini.py) in a temporary clone, then checked (scripts/rehearse.sh). Not a finding.
rehearse: $(STAMP)
	PYTHON="$(CURDIR)/$(BIN)/python" scripts/rehearse.sh

## Serve the API and the results page with gunicorn (gunicorn.conf.py; default http://127.0.0.1:8000).
serve: $(STAMP)
	OMP_WAIT_POLICY=PASSIVE $(BIN)/gunicorn -c gunicorn.conf.py

## The production way (README "Serving in production"): nginx (apt-get install nginx) in front of gunicorn,
## buffering slow clients; listens on LINGSHIFT_BIND (default 127.0.0.1:8000). `make serve` is the dev server.
serve-prod: $(STAMP)
	GUNICORN=$(CURDIR)/$(BIN)/gunicorn OMP_WAIT_POLICY=PASSIVE scripts/serve-prod.sh

## Docker (see README "Docker"): the wheelhouse the image installs from, a registry-free Debian base
## (debootstrap + docker import; root), and the container smoke test (build, pipeline, serve, probe).
## The -cuda targets: torch 2.13.0's CUDA build with its nvidia-* runtime wheels and the paper + ray extras
## (wheelhouse-cuda/), the image a Ray cluster's GPU nodes run (lingshift:cuda), and its smoke test.
BASE_IMAGE ?= lingshift/debian:bookworm
wheelhouse:
	scripts/make-wheelhouse.sh

wheelhouse-cuda:
	scripts/make-wheelhouse.sh --cuda

base-image:
	scripts/make-base-image.sh

image-cuda:
	@[ -d wheelhouse-cuda ] || { echo "error: no wheelhouse-cuda/; run make wheelhouse-cuda first" >&2; exit 1; }
	docker build --build-arg BASE_IMAGE=$(BASE_IMAGE) --build-arg TORCH_FLAVOUR=cuda --target repro -t lingshift:cuda .

container-smoke:
	scripts/container-smoke.sh

container-smoke-cuda:
	scripts/container-smoke.sh --cuda $(BASE_IMAGE)

## Run the test suite (unit + integration on the real offline resources), without the tests marked slow
## (minutes each: a real headless browser, a simulated Ray cluster, dvc repro of user models, a DVC experiment);
## `make test-slow` runs those, and .ci/run runs both.
test: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not integration and not slow"

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

## Benchmarks; need `make repro` first (the MiniLM weights, the MiniLM POS store, the trained probes):
##  1. pytest-benchmark (benchmarks/bench_*.py): extraction vs the bare forward, all-layer probes vs a dense
##     reference workload and vs NeuroX, API latency; each records same-run ratios (extra_info["ratio_*"]);
##     -> benchmarks/results/pytest_bench.json (OMP_WAIT_POLICY=PASSIVE, benchmarks/conftest.py);
##  2. the side-by-side figures the README quotes (bench_extract.py, bench_probe.py: one process, PASSIVE);
##  3. probe speed with each tool under its own best OMP_WAIT_POLICY (probe_fair.py, its own processes).
bench: $(BENCH)/.installed
	$(BENCH)/bin/python -m pytest -p no:cacheprovider --benchmark-only benchmarks \
	    --benchmark-json benchmarks/results/pytest_bench.json
	OMP_WAIT_POLICY=PASSIVE $(BENCH)/bin/python benchmarks/bench_extract.py --model-dir models/minilm/base \
	    --out benchmarks/results/extract.json
	OMP_WAIT_POLICY=PASSIVE $(BENCH)/bin/python benchmarks/bench_probe.py --store activations/minilm/base/pos-wsj \
	    --out benchmarks/results/probe.json
	$(BENCH)/bin/python benchmarks/probe_fair.py --store activations/minilm/base/pos-wsj \
	    --out benchmarks/results/probe_fair.json

## The CI benchmark gate (.ci/run): short pytest-benchmark runs compared with the committed baselines
## (benchmarks/baseline/, one per CPU class, recorded with `make bench-baseline` and the same settings): absolute
## medians may not be 4x the first baseline's (--benchmark-compare-fail, loose: another machine), and no same-run
## ratio may fall below BENCH_TOLERANCE x the baseline of this CPU class (benchmarks/check_ratios.py: same
## vendor/family/model, else same vendor, else the lowest). BENCH_PY: a Python with the project,
## pytest-benchmark and (for the NeuroX ratio) NeuroX.
BENCH_PY ?= $(BENCH)/bin/python
BENCH_TOLERANCE ?= 0.5
BENCH_SHORT := LINGSHIFT_BENCH_ROUNDS=10 LINGSHIFT_BENCH_SENTENCES=256 LINGSHIFT_BENCH_EXTRACT_ROUNDS=5 \
    LINGSHIFT_BENCH_PROBE_ROUNDS=5 LINGSHIFT_BENCH_NEUROX_ROUNDS=3 LINGSHIFT_BENCH_NEUROX_LAYERS=2
BENCH_BASELINE := benchmarks/baseline
BENCH_CHECK_JSON ?= $(or $(TMPDIR),/tmp)/lingshift-bench-check.json
bench-check:
	$(BENCH_SHORT) $(BENCH_PY) -m pytest -q -p no:cacheprovider --benchmark-only benchmarks \
	    --benchmark-storage=file://$(BENCH_BASELINE) --benchmark-compare=0001 --benchmark-compare-fail=median:300% \
	    --benchmark-json $(BENCH_CHECK_JSON)
	$(BENCH_PY) benchmarks/check_ratios.py $(sort $(wildcard $(BENCH_BASELINE)/*/*.json)) $(BENCH_CHECK_JSON) \
	    --tolerance $(BENCH_TOLERANCE)

## Record (or replace) the baseline of this machine's CPU class: BENCH_CLASS names the file (e.g. xeon, epyc);
## the other classes' baselines stay. Run it on a quiet machine.
BENCH_CLASS ?= $(error name this CPU class: make bench-baseline BENCH_CLASS=xeon)
bench-baseline:
	rm -f $(BENCH_BASELINE)/*/*_$(BENCH_CLASS).json
	$(BENCH_SHORT) $(BENCH_PY) -m pytest -q -p no:cacheprovider --benchmark-only benchmarks \
	    --benchmark-storage=file://$(BENCH_BASELINE) --benchmark-save=$(BENCH_CLASS)

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
