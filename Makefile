# kohya_orchestrator: every target creates its own virtual environment on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# The tests also drive the real `accelerate launch`, so the test venv gets the CPU build of
# torch and accelerate. Set TRAIN_DEPS= (empty) to skip them; those tests are then skipped.
TRAIN_DEPS ?= torch==2.13.0 accelerate
# The optional extras the tests cover: the loss reader (tensorboard), the loss plot
# (matplotlib), HEIC conversion (pillow-heif), near-duplicates (imagehash) and the tiny
# ONNX tagger (onnx, onnxruntime). Their tests skip cleanly (or check the refusal) without.
TEST_EXTRAS ?= dev,loss,plot,heif,dupes,tagger
# The demo's own venv: the core install only (no torch, no extras).
DEMO_VENV ?= .venv-demo
DEMO_STAMP := $(DEMO_VENV)/.installed-stamp

.PHONY: install test test-slow check lint demo bench faults e2e clean sd-scripts

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[$(TEST_EXTRAS)]'
	@if [ -n "$(TRAIN_DEPS)" ]; then $(PY) -m pip install -q $(TRAIN_DEPS); fi
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q

test-slow: $(STAMP)
	HYPOTHESIS_PROFILE=explore $(PY) -m pytest -q -m slow

lint: $(STAMP)
	$(VENV)/bin/ruff check kohya_orchestrator tests scripts bench
	$(VENV)/bin/ruff format --check kohya_orchestrator tests scripts bench
	$(VENV)/bin/mypy kohya_orchestrator

check: lint test

$(DEMO_STAMP): pyproject.toml
	$(PYTHON) -m venv $(DEMO_VENV)
	$(DEMO_VENV)/bin/python -m pip install -q --upgrade pip
	$(DEMO_VENV)/bin/python -m pip install -q -e .
	touch $(DEMO_STAMP)

demo: $(DEMO_STAMP)
	SD_SCRIPTS="$(SD_SCRIPTS)" MODEL="$(MODEL)" TOKENIZERS="$(TOKENIZERS)" SD_PYTHON="$(SD_PYTHON)" \
		$(DEMO_VENV)/bin/python scripts/demo.py

bench: $(STAMP)
	$(PY) bench/run.py

faults: $(STAMP)
	$(PY) -m pytest -q -m faults -p no:randomly

e2e: $(STAMP)
	SD_SCRIPTS="$(SD_SCRIPTS)" MODEL="$(MODEL)" TOKENIZERS="$(TOKENIZERS)" SD_PYTHON="$(SD_PYTHON)" \
		$(PY) -m pytest -q -m e2e -s

# The pinned sd-scripts (vendor/sd-scripts.pin) into vendor/sd-scripts; no venv needed.
SD_SCRIPTS_PIN ?= vendor/sd-scripts.pin
SD_SCRIPTS_DEST ?= vendor/sd-scripts
SD_SCRIPTS_URL ?=
sd-scripts:
	$(PYTHON) scripts/fetch_sd_scripts.py --pin "$(SD_SCRIPTS_PIN)" --dest "$(SD_SCRIPTS_DEST)" \
		$(if $(SD_SCRIPTS_URL),--url "$(SD_SCRIPTS_URL)")

clean:
	rm -rf $(VENV) $(DEMO_VENV) demo bench/out .pytest_cache .mypy_cache .ruff_cache
