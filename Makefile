# Every install step lives here: a fresh machine needs only python3 (>= 3.11),
# npm (the panel's Socket.IO client) and, for the browser tests, Debian's apt.
VENV  := .venv
PY    := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SIO   := $(VENV)/npm/node_modules/socket.io-client/dist/socket.io.min.js

.PHONY: demo test bench clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

$(SIO):
	npm install --silent --no-audit --no-fund --prefix $(VENV)/npm socket.io-client@4.8.1

/usr/bin/chromium:
	if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; $$SUDO apt-get update -q >/dev/null && $$SUDO apt-get install -y -q chromium >/dev/null

demo: $(STAMP) $(SIO)
	$(VENV)/bin/callcenter demo $(ARGS)

test: $(STAMP) $(SIO) /usr/bin/chromium
	$(PY) -m pytest $(ARGS)

bench: $(STAMP) $(SIO)
	$(PY) -m pip install --quiet -e '.[test,bench]'
	$(PY) benchmarks/ami_throughput.py
	$(PY) benchmarks/simulator_load.py
	$(PY) benchmarks/report_speed.py
	$(PY) benchmarks/ivr_concurrency.py
	$(PY) benchmarks/acd_routing.py
	$(PY) benchmarks/screen_pop_latency.py

clean:
	rm -rf $(VENV) var .pytest_cache .hypothesis
