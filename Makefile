# Two commands set up a fresh machine:
#   make demo   create .venv, install relmap, run the whole demo engagement
#   make test   create .venv, install relmap with test extras, run the tests
# Each step prints one line; pip's output goes to $(INSTALL_LOG), whose last
# lines are shown when a step fails.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.relmap-installed
INSTALL_LOG := $(VENV)/install.log
PYTEST_ARGS ?=

.PHONY: demo test install system system-test clean-venv

$(STAMP): pyproject.toml
	@echo "[1/3] Creating the Python environment in $(VENV)"
	@$(PYTHON) -m venv $(VENV)
	@echo "[2/3] Updating pip (log: $(INSTALL_LOG))"
	@$(BIN)/python -m pip install --upgrade pip > $(INSTALL_LOG) 2>&1 \
		|| { tail -n 30 $(INSTALL_LOG); echo "pip failed; see $(INSTALL_LOG)" >&2; exit 1; }
	@echo "[3/3] Installing relmap and its pinned dependencies (log: $(INSTALL_LOG))"
	@$(BIN)/python -m pip install -e ".[test]" >> $(INSTALL_LOG) 2>&1 \
		|| { tail -n 30 $(INSTALL_LOG); echo "pip failed; see $(INSTALL_LOG)" >&2; exit 1; }
	@touch $(STAMP)

install: $(STAMP)

system:
	@bash scripts/ensure_system_packages.sh

system-test:
	@bash scripts/ensure_system_packages.sh --with-browser

demo: $(STAMP) system
	@echo "Running the demo engagement (relmap demo)"
	@$(BIN)/relmap demo

test: $(STAMP) system-test
	@$(BIN)/python -m pytest $(PYTEST_ARGS)

clean-venv:
	rm -rf $(VENV)
