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

# The toy benchmark end to end: preview, judge, the paper's model, its mIoU row (Fig. 8
# style: gray / ours / colour) and sample grids. Trained weights under $PSC_HOME are
# reused, so a second run only re-evaluates (cached).
JUDGE ?= deeplabv3plus-resnet18
have = $(PY) -c "import sys; from psc_eval import paths; sys.exit(0 if ($(1)).is_file() else 1)"

demo: $(STAMP)
	$(CLI) ls
	$(CLI) data preview --dataset toy --out $(DEMO_OUT)/toy-preview.png
	@$(call have,paths.judge_weights_path('toy', '$(JUDGE)')) \
	  || $(CLI) train-judge --dataset toy --arch $(JUDGE)
	@$(call have,paths.colorizer_dir('toy', 'ours') / 'last.pt') \
	  || $(CLI) train --colorizer ours --dataset toy --config toy
	$(CLI) miou --colorizer ours --dataset toy --segmenter $(JUDGE) --out $(DEMO_OUT)
	$(CLI) sample --colorizer ours --dataset toy --n 3 --limit 8 --out $(DEMO_OUT)/samples

test: $(STAMP)
	$(PY) -m pytest tests

lint: $(STAMP)
	$(VENV)/bin/ruff check psc_eval models baselines tests benchmarks

clean:
	rm -rf $(VENV) out .pytest_cache
