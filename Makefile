# Two commands set up a fresh machine:
#   make demo   create .venv, install relmap, run the whole demo engagement
#   make test   create .venv, install relmap with test extras, run the tests
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.relmap-installed
PYTEST_ARGS ?=

.PHONY: demo test install system clean-venv

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

system:
	bash scripts/ensure_system_packages.sh

demo: $(STAMP) system
	$(BIN)/relmap demo

test: $(STAMP) system
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean-venv:
	rm -rf $(VENV)
