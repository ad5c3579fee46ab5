# Benchmark targets (see bench/run.py for every setting) and the long fuzz run.
PYTHON ?= python3
MINUTES ?= 10
SUDO ?= $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: help bench bench-quick bench-report bench-test bench-ab bench-deps fuzz

help:
	@echo "make bench-deps    install nginx, wrk, ab (Debian) and bench/requirements.txt"
	@echo "make bench         full benchmark -> bench/RESULTS.md, bench/results.png"
	@echo "make bench-quick   smoke run (1 run of 2s each) -> bench/out/quick/"
	@echo "make bench-report  re-render the reports of the last run from bench/out/results.json"
	@echo "make bench-test    unit tests of the harness (parsers, report)"
	@echo "make bench-ab BASE=<commit> [NEW=<commit>]  A/B of two builds (default NEW: the working tree)"
	@echo "make docs          regenerate the settings table in docs/server.md"
	@echo "make fuzz          differential fuzzing of the parser vs h11 and llhttp for MINUTES (10)"

bench-deps:
	$(SUDO) apt-get update
	$(SUDO) apt-get install -y nginx wrk apache2-utils
	$(PYTHON) -m pip install -r bench/requirements.txt

bench:
	$(PYTHON) bench/run.py

bench-quick:
	RUNS=1 DURATION=2s WARMUP=1s AB_REQUESTS=5000 OUT=bench/out/quick $(PYTHON) bench/run.py

bench-report:
	$(PYTHON) bench/run.py --report-only

bench-test:
	$(PYTHON) -m unittest discover -s bench -p 'test_*.py'

bench-ab:
	@test -n "$(BASE)" || (echo "usage: make bench-ab BASE=<commit> [NEW=<commit>]"; exit 2)
	$(PYTHON) bench/ab.py --base $(BASE) $(if $(NEW),--new $(NEW))

.PHONY: docs
docs:  ## regenerate the settings table in docs/server.md from the settings table in code
	$(PYTHON) docs/settings_table.py

.PHONY: fuzz
fuzz:  ## differential fuzzing of the parser for MINUTES minutes
	FUZZ_MINUTES=$(MINUTES) $(PYTHON) -m pytest -q -s tests/test_fuzz.py
