# `make run` starts the app; `make test` installs everything the tests need (Chromium included) and runs them.
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test bench chromium

run: $(VENV)/.app
	$(PY) app.py

test: $(VENV)/.dev chromium
	$(VENV)/bin/ruff check .
	$(PY) -m pytest

bench: $(VENV)/.dev
	$(PY) bench/payload_bytes.py

chromium:
	@command -v chromium >/dev/null || (apt-get update -q && apt-get install -y -q chromium)

$(VENV)/.app: requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r requirements.txt
	touch $@

$(VENV)/.dev: $(VENV)/.app requirements-dev.txt
	$(VENV)/bin/pip install -q -r requirements-dev.txt
	touch $@
