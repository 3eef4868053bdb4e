# Two set-up commands: `make demo` and `make test`. Both create or update the virtual
# environment from pyproject.toml first (skipped when nothing changed).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint format dev serve bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "Installing char_pipeline and its dependencies into $(VENV) (first run takes a few minutes)…"
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	# torch is pinned to 2.13.0: pip takes the CPU wheel from this machine's disk.
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	# The person pose model of the rig (see pyproject.toml for why --no-deps).
	$(BIN)/python -m pip install --quiet --no-deps mediapipe==0.10.21
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/char-pipeline demo

test: $(STAMP)
	$(BIN)/ruff check char_pipeline tests bench
	$(BIN)/ruff format --check char_pipeline tests bench
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check char_pipeline tests bench
	$(BIN)/ruff format --check char_pipeline tests bench

format: $(STAMP)
	$(BIN)/ruff check --fix char_pipeline tests bench
	$(BIN)/ruff format char_pipeline tests bench

dev: $(STAMP)
	$(BIN)/char-pipeline dev

serve: $(STAMP)
	$(BIN)/char-pipeline serve

bench: $(STAMP)
	$(BIN)/python bench/render_video.py
	$(BIN)/python bench/import_time.py
	$(BIN)/python bench/animation.py
	$(BIN)/python bench/nerf.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
