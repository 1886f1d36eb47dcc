# Every install step lives here: a fresh machine needs only python3 (>= 3.11).
VENV  := .venv
PY    := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test bench clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

demo: $(STAMP)
	$(VENV)/bin/callcenter demo $(ARGS)

test: $(STAMP)
	$(PY) -m pytest $(ARGS)

bench: $(STAMP)
	$(PY) -m pip install --quiet -e '.[test,bench]'
	$(PY) benchmarks/ami_throughput.py
	$(PY) benchmarks/simulator_load.py
	$(PY) benchmarks/report_speed.py

clean:
	rm -rf $(VENV) var .pytest_cache .hypothesis
