# Two commands set everything up: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test bench clean

$(BIN)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.lock
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $@

demo: $(BIN)/.installed  ## run the whole flow on the embedded Hillstrom data
	$(BIN)/promolift demo --out promolift-demo

test: $(BIN)/.installed  ## run the test suite
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) promolift-demo .pytest_cache
