# The two set-up commands of the README: `make demo` and `make test`.
# Both create .venv and install what they need; torch is pinned first so pip never pulls CUDA.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

RLLIB_VENV := .venv-rllib

.PHONY: demo test test-slow test-rllib test-all bench lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[dev]"
	# benchmarl 1.5.2 declares torchrl<0.12 (pip would refuse it beside torchrl 0.14.1); its only
	# other requirement in use, hydra-core, is in the dev extra
	$(BIN)/pip install --quiet --no-deps benchmarl==1.5.2
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/commchannels demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

# RLlib through the .[rllib] extra, in its own venv: Ray pins gymnasium==1.2.2, and the default
# venv keeps the newest gymnasium (the suite passes on both)
$(RLLIB_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(RLLIB_VENV)
	$(RLLIB_VENV)/bin/pip install --quiet torch==2.13.0
	$(RLLIB_VENV)/bin/pip install --quiet -e ".[rllib,dev]"
	touch $@

test-rllib: $(RLLIB_VENV)/.installed
	$(RLLIB_VENV)/bin/python -m pytest -q -m "slow or not slow" tests/wrappers/test_rllib.py tests/examples -k rllib

test-all: $(STAMP)
	$(BIN)/python -m pytest -q -m "slow or not slow"

lint: $(STAMP)
	$(BIN)/ruff check commchannels tests examples benchmarks

clean:
	rm -rf $(VENV) $(RLLIB_VENV) runs
