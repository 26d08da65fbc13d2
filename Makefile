# weightscape — every command a user or CI runs. `make demo` and `make test` install on first use.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip install --disable-pip-version-check -q -c constraints.txt
STAMP := $(VENV)/.installed
PEERS := .venv-peers
# Benchmarks and tests get a fixed thread count so numbers are comparable and reproducible.
THREADS ?= 2
DEMO_OUT ?= demo-out

.PHONY: install data demo test test-slow test-integration lint format bench ci peers clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q --upgrade pip
	# torch first: the CPU wheel of 2.13.0 (constraints.txt pins it, so no CUDA build is pulled)
	$(PIP) torch==2.13.0
	$(PIP) -e '.[dev,mnist-sample]'
	touch $(STAMP)

install: $(STAMP)

# Full Fashion-MNIST (Debian's dataset-fashion-mnist, 30 MB) where this machine can install it
# (root + apt-get); without it, studies fall back to the bundled MNIST sample and its tests skip.
data:
	@if [ -d /usr/share/datasets/fashion-mnist ]; then \
	  echo "data: Fashion-MNIST present"; \
	elif [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
	  echo "data: installing dataset-fashion-mnist"; \
	  { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q dataset-fashion-mnist; } >/dev/null 2>&1 \
	    || echo "data: dataset-fashion-mnist could not be installed; Fashion-MNIST tests will skip"; \
	else \
	  echo "data: Fashion-MNIST not installed (needs root and apt-get); using the bundled MNIST sample"; \
	fi

demo: $(STAMP)
	OMP_NUM_THREADS=$(THREADS) $(BIN)/weightscape reproduce all --scale smoke --out $(DEMO_OUT) --force

test: $(STAMP)
	OMP_NUM_THREADS=$(THREADS) $(BIN)/pytest -q

$(PEERS)/.installed: scripts/make-peers-env.sh
	bash scripts/make-peers-env.sh $(PEERS)

peers: $(PEERS)/.installed

test-slow: $(STAMP)
	-bash scripts/make-peers-env.sh $(PEERS) || echo "peers environment unavailable: ConIII cross-checks will be skipped"
	OMP_NUM_THREADS=$(THREADS) WEIGHTSCAPE_PEERS=$(abspath $(PEERS)) $(BIN)/pytest -q -m slow --durations=12

test-integration: $(STAMP)
	bash scripts/integration.sh

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

format: $(STAMP)
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

bench: $(STAMP)
	@for b in benchmarks/*.py; do echo "== $$b"; OMP_NUM_THREADS=$(THREADS) $(BIN)/python $$b || exit 1; done

ci: data lint test test-slow
	@if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
	  $(MAKE) test-integration; \
	else \
	  echo "test-integration skipped: needs root and apt-get to install slurm-wlm, munge and chromium"; \
	fi

clean:
	rm -rf $(VENV) $(PEERS) .pytest_cache .ruff_cache .hypothesis $(DEMO_OUT)
