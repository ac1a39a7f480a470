# make demo: the main job on the embedded toy dataset.  make test: the test suite.
# Both create .venv and install the project into it when missing.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
CLI := $(VENV)/bin/psc-eval
STAMP := $(VENV)/.psc-installed
DEMO_OUT ?= out/demo

.PHONY: install demo test lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $(STAMP)

# The toy benchmark end to end: psc-eval regress (every shipped model colorizes and is
# judged afresh on 96 val images, checked against reports/toy/expected.json), then
# psc-eval reproduce (the judge and models shipped in reports/toy/checkpoints unless
# trained under $PSC_HOME; every metric on the 500 val images; the report).
# A second run is nearly free (evaluation cache).
demo: $(STAMP)
	$(CLI) ls
	$(CLI) data preview --dataset toy --out $(DEMO_OUT)/toy-preview.png
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(CLI) regress
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(CLI) reproduce --dataset toy --out $(DEMO_OUT)

# The metrics regression check first (reports/toy/expected.json, about 20 s), then the suite.
test: $(STAMP)
	OMP_NUM_THREADS=1 $(CLI) regress
	$(PY) -m pytest tests

lint: $(STAMP)
	$(VENV)/bin/ruff check psc_eval models baselines tests benchmarks

clean:
	rm -rf $(VENV) out .pytest_cache
