# Set-up and everyday commands. Every target creates the virtual environment it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck unit clean browser docs-screenshot

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

## demo: install, then start a local 3-node cluster and run a short workload against it
demo: $(STAMP)
	$(BIN)/resonetics demo

## lint / typecheck / unit: the three parts of `make test`
lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -q

## browser: Debian's chromium for the dashboard's browser test (tests/integration/test_dashboard.py),
## installed with apt-get when it is missing and we are root; otherwise says how
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	{ if [ "$$(id -u)" = 0 ]; then DEBIAN_FRONTEND=noninteractive apt-get install -y chromium || \
	  { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; }; \
	  else echo "chromium is missing: run 'sudo apt-get install -y chromium' (the dashboard test needs it)"; fi; }

## test: install, then run the linters, the type checker and the whole test suite
test: lint typecheck browser unit

## docs-screenshot: docs/images/dashboard.png from a live 3-node cluster under load
docs-screenshot: $(STAMP) browser
	$(BIN)/python -m bench.dashboard_screenshot

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache

## bench: install the bench extras, etcd and Go, build the gRPC load generator (offline, from
## Debian's etcd sources), then benchmark Resonetics against etcd (gRPC; the JSON gateway as a
## separate row) and PySyncObj, with mutual-TLS, entry-signing and library-client rows
BENCH_SYSTEMS ?= resonetics,resonetics-client,resonetics-signed,etcd,etcd-gateway,pysyncobj,pysyncobj-nobatch
.PHONY: bench
bench: $(STAMP)
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	bash bench/setup.sh
	$(BIN)/resonetics bench --tls --systems $(BENCH_SYSTEMS)

## fuzz: mutated client and peer lines against a local 3-node cluster (issue 14's target:
## 1,000,000 client and 100,000 peer lines; about 7.5 minutes measured on 2 shared cores). The summary and the
## node logs go to a fresh temp dir, printed at the start. FUZZ_SEED=N replays a seed.
FUZZ_SEED ?= 14
.PHONY: fuzz
fuzz: $(STAMP)
	$(BIN)/resonetics fuzz --nodes 3 --client-lines 1000000 --peer-lines 100000 \
		--seed $(FUZZ_SEED) --time-limit 3600

## soak: the planted-bug catalogue (src/resonetics/planted.py) with SOAK_FACTOR times the CI
## budgets, then one long clean sweep spread over every fault kind and mode (sim --mix: churn,
## adversary, five nodes, batched writes, watchers and leases, the three targeted scenarios),
## on one process per CPU.
SOAK_FACTOR ?= 10
SOAK_SEEDS ?= 9000
.PHONY: soak
soak: $(STAMP)
	RESONETICS_PLANTED_FACTOR=$(SOAK_FACTOR) $(BIN)/pytest -q tests/sim/test_planted_bugs.py
	$(BIN)/resonetics sim --seeds $(SOAK_SEEDS) --mix --workers 0
