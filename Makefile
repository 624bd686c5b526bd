# `make run` starts the app; `make test` installs everything the tests need (Chromium included) and runs them.
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test bench screenshots chromium

run: $(VENV)/.app
	$(PY) app.py

# The browser tests and the others run side by side (one Chromium at a time, two cores); both must pass.
test: $(VENV)/.dev chromium
	$(VENV)/bin/ruff check .
	@($(PY) -m pytest -m "not browser" -q > .pytest-other.log 2>&1; echo $$? > .pytest-other.rc) & \
	$(PY) -m pytest -m browser; browser=$$?; wait; \
	echo "--- the other tests:"; cat .pytest-other.log; other=$$(cat .pytest-other.rc); \
	test $$browser -eq 0 -a $$other -eq 0

bench: $(VENV)/.dev
	$(PY) bench/payload_bytes.py
	$(PY) bench/decode_memory.py

screenshots: $(VENV)/.dev chromium
	SCREENSHOT_DIR=docs $(PY) -m pytest -q tests/test_browser_demo.py -k first_screen

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
