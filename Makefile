# Every install step lives here: a fresh machine needs only python3 (>= 3.11),
# npm (the panel's Socket.IO client and CSS toolkit) and Debian's apt (GNU make >= 4.3).
VENV  := .venv
PY    := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The panel's browser side from npm: Socket.IO's client, and Pico CSS (styles semantic HTML, no build step).
SIO   := $(VENV)/npm/node_modules/socket.io-client/dist/socket.io.min.js
PICO  := $(VENV)/npm/node_modules/@picocss/pico/css/pico.min.css
# Debian packages, each by a file it installs: Chromium for the browser tests,
# espeak-ng and sox to make the IVR's prompts, Asterisk's own prompts and music
# on hold for a real Asterisk (../shared/asterisk links them).
APT_PACKAGES := chromium espeak-ng sox asterisk-core-sounds-en-gsm asterisk-moh-opsound-gsm
APT_FILES    := /usr/bin/chromium /usr/bin/espeak-ng /usr/bin/sox \
                /usr/share/asterisk/sounds/en_US_f_Allison/queue-thankyou.gsm /usr/share/asterisk/moh/macroform-cold_day.gsm
# The IVR's prompts (contrib/prompts/prompts.yaml spoken into var/prompts/sounds/cc/*.wav); ivr.prompts keeps this index.
PROMPTS := var/prompts/sounds/.prompts.json

.PHONY: demo test bench clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

$(SIO) $(PICO) &:
	npm install --silent --no-audit --no-fund --prefix $(VENV)/npm socket.io-client@4.8.1 @picocss/pico@2.1.1

# One apt-get run for all of them, only when one is missing (a grouped target).
$(APT_FILES) &:
	if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; $$SUDO apt-get update -q >/dev/null && $$SUDO apt-get install -y -q $(APT_PACKAGES) >/dev/null

# Remade only when the texts (or the generator) change; ivr.prompts itself skips what is up to date.
$(PROMPTS): contrib/prompts/prompts.yaml ivr/prompts.py | $(STAMP) $(APT_FILES)
	$(PY) -m ivr.prompts contrib/prompts/prompts.yaml var/prompts/sounds
	touch $@

demo: $(STAMP) $(SIO) $(PICO) $(APT_FILES) $(PROMPTS)
	$(VENV)/bin/callcenter demo $(ARGS)

# The linter, the formatter's check and the type checker first (pyproject.toml says what each holds), then the tests.
test: $(STAMP) $(SIO) $(PICO) $(APT_FILES) $(PROMPTS)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	$(PY) -m pytest $(ARGS)

bench: $(STAMP) $(SIO) $(PICO)
	$(PY) -m pip install --quiet -e '.[test,bench]'
	$(PY) benchmarks/ami_throughput.py
	$(PY) benchmarks/simulator_load.py
	$(PY) benchmarks/report_speed.py
	$(PY) benchmarks/ivr_concurrency.py
	$(PY) benchmarks/acd_routing.py
	$(PY) benchmarks/screen_pop_latency.py

clean:
	rm -rf $(VENV) var .pytest_cache .hypothesis
