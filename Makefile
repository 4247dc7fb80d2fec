# Two entry points a fresh machine needs: `make demo` (the bot on embedded defaults, no Slack)
# and `make test` (the whole suite). Both build .venv from pyproject.toml first.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test]'
	touch $(STAMP)

.PHONY: install demo test bench
install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/crsbot console --demo

test: $(STAMP)
	$(VENV)/bin/python -m pytest

bench: $(STAMP)
	$(VENV)/bin/python bench/grading.py
	$(VENV)/bin/python bench/slack_http.py
	$(VENV)/bin/python bench/reminders.py
	$(VENV)/bin/python bench/timeline.py
