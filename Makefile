# Two commands do all the set-up on a fresh machine (see README.md):
#   make demo   the main job: the end-to-end demo on scikit-learn's digits
#   make test   the test suite (what CI runs)
# Both create or update the local virtual environment .venv first.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# torch's CPU build first: a bare "torch" requirement would pull a multi-GB CUDA build.
TORCH  := torch==2.13.0

.PHONY: venv demo test bench clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

demo: venv
	$(BIN)/circa demo $(ARGS)

test: venv
	$(BIN)/python -m pytest -n 2 --durations=15 $(ARGS)

bench: venv
	$(BIN)/circa bench $(ARGS)

clean:
	rm -rf $(VENV) build out
