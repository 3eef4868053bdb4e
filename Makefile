# Two set-up commands: `make demo` and `make test`. Both first make .venv exactly what the lock
# says (requirements/*.txt, hashed; docs/dependencies.md), skipped when nothing changed.
#
#   TORCH=cpu   (default) PyTorch's CPU build: the embedded default, no GPU needed.
#   TORCH=cuda  PyPI's CUDA build of the same torch, for GPU workers (`make setup TORCH=cuda`).
PYTHON ?= python3.11
TORCH ?= cpu
# Where pip finds torch's CPU build (PyPI has only the CUDA one). Machines that keep the wheel
# in a local folder (pip's find-links) take it from there; the hash in the lock is the same.
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
ifeq ($(filter $(TORCH),cpu cuda),)
$(error TORCH must be cpu or cuda, not '$(TORCH)')
endif
VENV := .venv
BIN := $(VENV)/bin
LOCKS := requirements/$(TORCH).txt requirements/mediapipe.txt
STAMP := $(VENV)/.installed-$(TORCH)
PIP_INSTALL := $(BIN)/python -m pip install --quiet --require-hashes --no-deps
UV := uv==0.13.9
UV_COMPILE := --python-version 3.11 --python-platform x86_64-manylinux_2_28 --generate-hashes --no-strip-extras

.PHONY: setup demo test lint format dev serve doctor bench lock clean

setup: $(STAMP)

$(STAMP): $(LOCKS) pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "Installing the locked dependencies ($(TORCH) torch) into $(VENV) (first run takes a few minutes)…"
	@rm -f $(VENV)/.installed-*
	@extra="$$($(BIN)/python char_pipeline/lockfile.py $(LOCKS))" || exit 1; \
	  if [ -n "$$extra" ]; then echo "Removing what the lock does not hold: $$extra"; \
	  $(BIN)/python -m pip uninstall --quiet --yes $$extra; fi
	@# torch first and alone: the CPU build comes from a local wheel folder or, failing that,
	@# PyTorch's CPU index (asked for this one package only: every other lookup stays on PyPI).
	@$(BIN)/python char_pipeline/lockfile.py --entry torch requirements/$(TORCH).txt > $(VENV)/torch.txt
	@if [ "$(TORCH)" = cpu ]; then \
	  $(PIP_INSTALL) -r $(VENV)/torch.txt 2>/dev/null || \
	  $(PIP_INSTALL) --extra-index-url $(TORCH_CPU_INDEX) -r $(VENV)/torch.txt; \
	else $(PIP_INSTALL) -r $(VENV)/torch.txt; fi
	$(PIP_INSTALL) $(addprefix -r ,$(LOCKS))
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/char-pipeline demo

test: $(STAMP)
	$(BIN)/ruff check char_pipeline aicharacter tests bench tools
	$(BIN)/ruff format --check char_pipeline aicharacter tests bench tools
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check char_pipeline aicharacter tests bench tools
	$(BIN)/ruff format --check char_pipeline aicharacter tests bench tools

format: $(STAMP)
	$(BIN)/ruff check --fix char_pipeline aicharacter tests bench tools
	$(BIN)/ruff format char_pipeline aicharacter tests bench tools

dev: $(STAMP)
	$(BIN)/char-pipeline dev

serve: $(STAMP)
	$(BIN)/char-pipeline serve

doctor: $(STAMP)
	$(BIN)/char-pipeline doctor

bench: $(STAMP)
	$(BIN)/python bench/render_video.py
	$(BIN)/python bench/import_time.py
	$(BIN)/python bench/animation.py
	$(BIN)/python bench/nerf.py

# Re-resolve the locks after editing pyproject.toml or requirements/*.in. Existing pins are kept
# where they still fit (uv reads the old file); `make lock UPGRADE=1` takes the newest releases.
# uv is pinned and runs from its own venv; it needs the package index (and, for the CPU lock,
# a folder or index that has torch's CPU wheel: TORCH_CPU_FIND_LINKS).
TORCH_CPU_FIND_LINKS ?= /opt/wheels
lock:
	@test -x .lock-venv/bin/uv || { $(PYTHON) -m venv .lock-venv && .lock-venv/bin/python -m pip install --quiet "$(UV)"; }
	.lock-venv/bin/uv pip compile pyproject.toml requirements/lock.in --extra dev --extra safety \
	  -c requirements/torch-cpu.in --find-links $(TORCH_CPU_FIND_LINKS) $(UV_COMPILE) \
	  $(if $(UPGRADE),--upgrade) -o requirements/cpu.txt
	.lock-venv/bin/uv pip compile pyproject.toml requirements/lock.in --extra dev --extra safety \
	  $(UV_COMPILE) $(if $(UPGRADE),--upgrade) -o requirements/cuda.txt
	.lock-venv/bin/uv pip compile requirements/mediapipe.in --no-deps $(UV_COMPILE) \
	  -o requirements/mediapipe.txt

clean:
	rm -rf $(VENV) .lock-venv .pytest_cache .ruff_cache
