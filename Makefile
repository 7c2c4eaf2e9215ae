# Every target does its own set-up: a fresh clone needs nothing but python3 (and root or sudo
# for Graphviz when `dot` is missing).
PY         ?= python3
UV_VERSION := 0.13.8
UV         := .tools/bin/uv
VENV       := .venv
BIN        := $(VENV)/bin
SUDO       := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
# uv trusts the OS certificate store, as pip does (a proxy's CA is there, not in uv's own bundle)
export UV_SYSTEM_CERTS ?= 1

.PHONY: run test bench soak screenshots specs deps graphviz chromium clean

run: deps ## set up, then start the sandbox, the Dagster UI and the docs
	$(BIN)/integrations up

test: deps chromium ## set up, then run the whole test suite
	$(BIN)/pytest

bench: deps ## set up, then run the benchmarks (tens of minutes; figures go in docs/performance.md and .json)
	$(BIN)/python benchmarks/bench_sync.py
	$(BIN)/python benchmarks/bench_validate.py
	$(BIN)/python benchmarks/bench_receiver.py
	$(BIN)/python benchmarks/bench_latency.py
	$(BIN)/python benchmarks/bench_scale.py
	$(BIN)/python benchmarks/bench_docs.py --sizes 10 100 1000
	$(BIN)/python benchmarks/bench_cli.py

soak: deps ## set up, then run the fault soak (bounded; figures go in docs/reliability.md)
	$(BIN)/python benchmarks/soak.py

screenshots: deps chromium ## set up, then redraw docs/screenshots/ (the Dagster UI and the docs in headless chromium)
	$(BIN)/python benchmarks/screenshots.py --out docs/screenshots

specs: deps ## refresh the vendors' contracts in tests/contracts/specs (HUBSPOT_SPECS_REPO=<git dir> for HubSpot's)
	$(BIN)/python tests/contracts/refresh.py $(if $(HUBSPOT_SPECS_REPO),hubspot --hubspot-repo $(HUBSPOT_SPECS_REPO)) shopify zendesk mailchimp

deps: $(VENV)/.synced graphviz

$(UV):
	$(PY) -m venv .tools
	.tools/bin/pip install --quiet uv==$(UV_VERSION)

$(VENV)/.synced: uv.lock pyproject.toml | $(UV)
	$(UV) sync --frozen --all-extras
	@mkdir -p $(DAGSTER_HOME) && touch $@

graphviz:
	@command -v dot >/dev/null 2>&1 || { \
	  if command -v apt-get >/dev/null 2>&1; then \
	    echo "Graphviz 'dot' is missing: installing it with apt-get"; \
	    $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq graphviz >/dev/null; \
	  elif command -v brew >/dev/null 2>&1; then brew install graphviz; \
	  fi; \
	  command -v dot >/dev/null 2>&1 || { echo "error: Graphviz 'dot' is required; install the 'graphviz' OS package"; exit 1; }; \
	}

chromium: ## the docs' browser test drives Debian's headless chromium
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "chromium is missing: installing Debian's package with apt-get"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium >/dev/null; \
	}

clean:
	rm -rf $(VENV) .tools .dagster_home .data site
