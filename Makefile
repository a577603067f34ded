# The README's two commands:  `make lab` (set up, then open JupyterLab)  and  `make test`;  `make site` builds the
# course website into site/.  All create .venv on first use from requirements-lock.txt; later runs skip the install.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.dfl-installed
PIP    := $(BIN)/python -m pip --disable-pip-version-check
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root)
PYTEST_ARGS ?=
# pytest-xdist workers; --dist loadfile keeps each notebook's cells (and each test file) on one worker, in order
PYTEST_WORKERS ?= 2

.PHONY: setup lab test site lock

setup: $(STAMP)

$(STAMP): requirements-lock.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q -r requirements-lock.txt
	$(PIP) install -q --no-deps -e .
	@touch $(STAMP)

lab: $(STAMP)
	$(BIN)/jupyter lab --notebook-dir=notebooks $(ROOT_FLAG) $(LAB_ARGS)

# Lint, then unit tests (the real-browser one included: tests/test_browser.py) and every notebook under nbval,
# in quick mode, on $(PYTEST_WORKERS) workers (PYTEST_WORKERS=0: one process).
# pytest exit code 5 (no test collected) is a failure here: a suite that runs nothing proves nothing.
test: $(STAMP)
	$(BIN)/ruff check dfl_toolkit tests benchmarks tools
	@DFL_QUICK=1 MPLBACKEND=Agg $(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile tests notebooks \
		--nbval-lax --nbval-current-env --nbval-cell-timeout=300 --ignore=notebooks/assignments/release \
		$(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests"; exit 1; fi; exit $$rc

# The course website, offline, into site/ (git-ignored; open site/index.html): the notebooks with their committed
# outputs, the guides and the API reference (tools/site/build.py). SITE_ARGS=--execute re-runs the lessons in quick
# mode first (about 11 minutes on 2 cores).
site: $(STAMP)
	$(BIN)/python tools/site/build.py $(SITE_ARGS)

# Regenerate the lock from a throwaway venv with the newest versions the ranges allow.
lock:
	rm -rf /tmp/dfl-lock-venv && $(PYTHON) -m venv /tmp/dfl-lock-venv
	/tmp/dfl-lock-venv/bin/python -m pip install -q -e '.[dev,pretrained,distributed,docs]' 'torch==2.14.1' 'torchvision==0.29.1'
	/tmp/dfl-lock-venv/bin/python tools/write_lock.py /tmp/dfl-lock-venv > requirements-lock.txt
