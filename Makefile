# Two entry points a fresh machine needs: `make demo` (the bot on embedded defaults, no Slack)
# and `make test` (the whole suite). Both build .venv from the lock file first: exact versions,
# every file checked against its sha256, nothing resolved at install time.
# `make lock` refreshes the lock files from pyproject.toml, keeping existing pins; `make lock-upgrade`
# moves every pin to the newest release (see README, "Dependencies").
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
LOCK_VENV := .venv-lock
# Hashes must be PyPI's, whatever mirror or wheel folder this machine's pip is configured with.
LOCK_ENV := env -u PIP_FIND_LINKS -u PIP_EXTRA_INDEX_URL -u PIP_INDEX_URL PIP_CONFIG_FILE=/dev/null
PIP_COMPILE := $(LOCK_ENV) $(LOCK_VENV)/bin/pip-compile --quiet --generate-hashes --strip-extras \
	--allow-unsafe --no-emit-index-url --index-url https://pypi.org/simple

$(STAMP): requirements-dev.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --require-hashes --no-deps -r requirements-dev.lock
	$(VENV)/bin/pip install --quiet --no-deps --no-build-isolation -e .
	$(VENV)/bin/pip check
	touch $(STAMP)

.PHONY: install demo test bench lock lock-upgrade dev-lock-seed image-smoke readme-pictures
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

# requirements.lock: what the image runs. requirements-build.lock: the build backend (setuptools)
# the image builds the crsbot wheel with. requirements-dev.lock: the runtime pins plus the test
# tools and the build backend; it starts from the other two so the shared pins stay identical.
# `make lock` keeps every pin already in the lock files (pip-compile prefers the versions it finds in
# its output file) and resolves only what pyproject.toml changed; `make lock-upgrade` (or
# `make lock UPGRADE=1`) starts from empty files, so every pin moves to the newest release allowed.
# The dev lock is seeded with the runtime and build pins just written, then its own pins (the test
# tools) of every other package; an upgrade seeds it with the runtime and build pins only.
lock:
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/pip install --quiet pip-tools
	$(if $(UPGRADE),rm -f requirements.lock requirements-build.lock requirements-dev.lock)
	$(PIP_COMPILE) --output-file requirements.lock pyproject.toml
	$(PIP_COMPILE) --all-build-deps --only-build-deps --output-file requirements-build.lock pyproject.toml
	$(MAKE) --no-print-directory dev-lock-seed
	$(PIP_COMPILE) --extra test --all-build-deps --output-file requirements-dev.lock pyproject.toml

dev-lock-seed:
	awk 'FNR == 1 { file++ } /^#/ { keep = 0 } /^[A-Za-z0-9]/ { name = $$1; sub(/==.*/, "", name); \
	  keep = file < 3 || !(name in pinned); if (file < 3) pinned[name] = 1 } keep' requirements.lock \
	  requirements-build.lock $(if $(UPGRADE),,$(wildcard requirements-dev.lock)) > requirements-dev.seed
	mv requirements-dev.seed requirements-dev.lock

lock-upgrade:
	$(MAKE) lock UPGRADE=1

# Build the image and try it (docker or podman); says SKIPPED where no engine works.
image-smoke: $(STAMP)
	$(VENV)/bin/python scripts/image-smoke

# Redraw the README's episode picture (docs/episode-timeline.png) from the scripted episode.
readme-pictures: $(STAMP)
	$(VENV)/bin/python scripts/readme-pictures
