# The two commands of the README: `make run` (the whole pipeline, locally) and `make test`.
# Both create/refresh the virtual environment themselves; a complete venv is reused in seconds.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.onevision-installed
RUN_DIR ?= runs/local

.PHONY: run test venv compile clean bench

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch is pinned in the same pip call: an unpinned torch pulls a multi-GB CUDA build.
	$(BIN)/python -m pip install -q torch==2.13.0 -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/onevision pipeline run --local --out $(RUN_DIR)

test: $(STAMP)
	$(BIN)/python -m pytest -q

compile: $(STAMP)
	$(BIN)/onevision pipeline compile

bench: $(STAMP)
	$(BIN)/python -m pip install -q torch==2.13.0 -e '.[test,bench]'
	$(BIN)/python bench/generator_vs_cascade.py --world $(RUN_DIR)/world \
	    --generator-bundle $(RUN_DIR)/bundles/generator --cascade-bundle $(RUN_DIR)/bundles/cascade --plot docs/img/pruning.svg

clean:
	rm -rf runs .pytest_cache
