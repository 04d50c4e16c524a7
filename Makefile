# The two commands: `make run` and `make test`. Both install what is missing.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3.11
UV_VERSION := 0.13.8
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := .venv
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
VENV_PY := .venv/bin/python
OSTEON := .venv/bin/osteon
# Debian packages: ffmpeg for streaming, chromium for browser tests,
# Mesa EGL/GL for Panda3D offscreen rendering, xvfb for the windowed path, gettext (msgfmt) for
# the shell's translations.
DEB_PACKAGES := ffmpeg chromium libegl1 libgl1-mesa-dri libgles2 libosmesa6 xvfb fonts-noto-cjk gcc gettext
DEMO_SERIES := var/demo/ct-lumbar
DEMO_CASE := assets/cases/demo-lumbar
# a demo case per region, so every scenario has one to run on (lumbar: pedicle, burr; hip:
# femoral neck guide wire; knee: lesion burr); each is a phantom series, then its case
DEMO_REGIONS := lumbar hip knee
DEMO_CASES := $(foreach r,$(DEMO_REGIONS),assets/cases/demo-$(r)/case.json)
# the DICOM viewer (Cornerstone3D) is bundled at build time from the locked npm packages
VIEWER := clinical_shell/imaging/static/imaging/viewer/viewer.js
VIEWER_DIR := clinical_shell/imaging/frontend
VIEWER_SRC := $(wildcard $(VIEWER_DIR)/src/*.js) $(VIEWER_DIR)/build.mjs $(VIEWER_DIR)/package-lock.json
# the training and credentialing pages' learning curves (ECharts), bundled the same way
CHARTS := clinical_shell/training/static/training/charts/charts.js
CHARTS_DIR := clinical_shell/training/frontend
CHARTS_SRC := $(wildcard $(CHARTS_DIR)/src/*.js) $(CHARTS_DIR)/package-lock.json
# the quality dashboards' sparklines, funnel plots and network map (ECharts), bundled the same way
QUALITY_CHARTS := clinical_shell/quality/static/quality/charts/quality.js
QUALITY_DIR := clinical_shell/quality/frontend
QUALITY_SRC := $(wildcard $(QUALITY_DIR)/src/*.js) $(QUALITY_DIR)/package-lock.json
# the plan page's 3D view (three.js), bundled the same way (esbuild)
PLANNER := clinical_shell/planning/static/planning/planner/planner.js
PLANNER_DIR := clinical_shell/planning/frontend
PLANNER_SRC := $(wildcard $(PLANNER_DIR)/src/*.js) $(PLANNER_DIR)/build.mjs $(PLANNER_DIR)/package-lock.json

.PHONY: help run demo-cases test deps system-deps viewer messages lint typecheck pytest bench clean

help:
	@echo "make run   install what is missing, build the demo case, load the demo region, serve the shell, open scenario 1"
	@echo "make test  install what is missing, lint, type-check, run the whole suite"

.tools/bin/uv:
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet uv==$(UV_VERSION)

.venv/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --python $(PYTHON)
	@touch $@

deps: .venv/.synced

system-deps:
	@missing=$$(for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:" $$missing; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

$(VIEWER): $(VIEWER_SRC)
	cd $(VIEWER_DIR) && npm ci --no-audit --no-fund --loglevel=error && npm run build
	@touch $@

viewer: $(VIEWER)

$(CHARTS): $(CHARTS_SRC)
	cd $(CHARTS_DIR) && npm ci --no-audit --no-fund --loglevel=error && npm run build
	@touch $@

$(QUALITY_CHARTS): $(QUALITY_SRC)
	cd $(QUALITY_DIR) && npm ci --no-audit --no-fund --loglevel=error && npm run build
	@touch $@

$(PLANNER): $(PLANNER_SRC)
	cd $(PLANNER_DIR) && npm ci --no-audit --no-fund --loglevel=error && npm run build
	@touch $@

# compiled translations (.mo) are build outputs: the project catalogue and every app's own
# (clinical_shell/<app>/locale); compilemessages skips a catalogue whose .mo is up to date
messages: deps system-deps
	cd clinical_shell && ../$(VENV_PY) manage.py compilemessages --ignore node_modules -v 0

var/demo/ct-%/.done: | deps
	$(OSTEON) phantom ct var/demo/ct-$* --region $* --seed 7
	@touch $@

# keep the series once built (make would delete it as an intermediate of the case)
.PRECIOUS: var/demo/ct-%/.done

assets/cases/demo-%/case.json: var/demo/ct-%/.done
	$(OSTEON) case build var/demo/ct-$* assets/cases/demo-$* --force

demo-cases: $(DEMO_CASES)

run: deps system-deps messages $(VIEWER) $(CHARTS) $(QUALITY_CHARTS) $(PLANNER) $(DEMO_CASES)
	$(OSTEON) shell keys
	OSTEON_DEMO=true $(OSTEON) demo

lint: deps
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

typecheck: deps
	.venv/bin/mypy

# two workers, a file per worker at a time: e2e files share a server per module. Rows the
# migrations seed are put back after each transactional test (tests/migration_seeds.py).
pytest: deps system-deps messages $(VIEWER) $(CHARTS) $(QUALITY_CHARTS) $(PLANNER)
	.venv/bin/pytest -n 2 --dist loadfile

test: deps system-deps lint typecheck pytest

bench: deps
	$(VENV_PY) benchmarks/case_build.py

clean:
	rm -rf .venv .tools var .pytest_cache .mypy_cache $(VIEWER_DIR)/node_modules $(dir $(VIEWER)) $(CHARTS_DIR)/node_modules $(dir $(CHARTS)) $(QUALITY_DIR)/node_modules $(dir $(QUALITY_CHARTS)) $(PLANNER_DIR)/node_modules $(dir $(PLANNER))
