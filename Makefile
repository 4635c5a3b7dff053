# Two commands do all the set-up (see README):
#   make run    create .venv, install doublerandom, run the main job (the baseline scenario)
#   make test   install the test extras into .venv and run the test suite
# durable-rules 2.0.28 compiles from source and imports on Python 3.11 and 3.12 only.

PYTHON ?= $(shell for p in python3.11 python3.12 python3; do \
	  v=$$($$p -c 'import sys; print(sys.version_info[:2] in ((3, 11), (3, 12)))' 2>/dev/null); \
	  [ "$$v" = True ] && { echo $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
OUT ?= out

.PHONY: run select test install lab policy clean

$(BIN)/python:
	@test -n "$(PYTHON)" || { echo "error: needs Python 3.11 or 3.12 (durable-rules does not build on 3.13)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[sim,service]'
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

run: $(VENV)/.installed
	$(BIN)/doublerandom run scenarios/baseline.yaml --out $(OUT)/baseline

select: $(VENV)/.installed
	mkdir -p $(OUT)
	$(BIN)/doublerandom select --rules scenarios/rules/baseline.yaml \
	  --enterprises scenarios/declarations/enterprises.csv \
	  --input scenarios/declarations/sample.jsonl --seed 1 > $(OUT)/decisions.jsonl
	@echo "decisions written to $(OUT)/decisions.jsonl"

$(VENV)/.installed-notebooks: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[notebooks]'
	touch $@

# served from the project root so the file browser reaches out/, where the notebooks write; opens on notebooks/
lab: $(VENV)/.installed-notebooks
	$(BIN)/jupyter lab --ServerApp.root_dir=$(CURDIR) --LabApp.default_url=/lab/tree/notebooks

# the policy page: sliders, Simulate, the frontier and a one-page report, without code (Voilà)
policy: $(VENV)/.installed-notebooks
	cd notebooks && ../$(BIN)/voila policy.ipynb

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) $(OUT)
