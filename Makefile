# Two commands: `make run` starts the product, `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test bench clean

$(STAMP): pyproject.toml
	@echo "Installing Wattson and its dependencies into $(VENV) (a minute or two the first time)..."
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --progress-bar on -e '.[test]'
	@echo "Installed."
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python serve.py

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n 4 --dist loadgroup

bench: $(STAMP)
	for b in bench/*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) instance reports
