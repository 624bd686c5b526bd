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

# Each benchmark prints its table and exits non-zero when its goal is missed; all of them run, then make fails if
# any missed. A new benchmark joins by its name (bench/NAME.py) in BENCHES; browser_bytes drives Chromium.
BENCHES := payload_bytes decode_memory overhead concurrent_users result_latency busy_neighbours startup memory_runs batch \
	browser_bytes

bench: $(VENV)/.dev chromium
	@failed=""; for b in $(BENCHES); do \
		echo "=== bench/$$b.py"; $(PY) bench/$$b.py || failed="$$failed $$b"; \
	done; \
	if [ -n "$$failed" ]; then echo "goals missed:$$failed"; exit 1; fi

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
