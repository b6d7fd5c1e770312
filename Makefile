# Everything a fresh machine needs, in two commands: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip

.PHONY: demo test test-latest bench bench-smoke clean system-deps

# `make test-latest`: the suite again on Python >= 3.12 with the newest anndata (0.13: its
# own interpreter floor is 3.12), in a second venv. The first interpreter found is used.
LATEST_VENV ?= .venv-latest
LATEST_PYTHON ?= $(shell for p in python3.12 python3.13 $(HOME)/.pyenv/versions/3.12*/bin/python3.12 \
    /root/.pyenv/versions/3.12*/bin/python3.12 $(HOME)/.pyenv/versions/3.13*/bin/python3.13; do \
  "$$p" -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1 && { echo "$$p"; break; }; done)
EXTRA_PINS ?=

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.demo-installed: pyproject.toml | $(PY)
	$(PIP) install --quiet -e '.[lazy,fast,cli]'
	touch $@

$(VENV)/.test-installed: pyproject.toml | $(PY)
	$(PIP) install --quiet -e '.[test,bench]' $(EXTRA_PINS)
	touch $@

# h5diff (Debian hdf5-tools) checks byte-level h5ad conformance, tmux runs the CLI in a real
# terminal (progress display test); both installed when we are root.
system-deps:
	@missing=""; \
	command -v h5diff >/dev/null 2>&1 || missing="$$missing hdf5-tools"; \
	command -v tmux >/dev/null 2>&1 || missing="$$missing tmux"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null) \
	      || echo "warning: could not install$$missing"; \
	  else echo "note:$$missing not found and not root: the h5diff/tmux tests will be skipped"; fi; fi

demo: $(VENV)/.demo-installed
	$(VENV)/bin/annio demo

test: $(VENV)/.test-installed system-deps
	$(PY) -m pytest -n 2 -q -p no:cacheprovider

test-latest:
	@if [ -z "$(LATEST_PYTHON)" ]; then \
	  echo "test-latest: no Python >= 3.12 on this machine: the anndata 0.13 run did not happen"; \
	  exit 0; fi
	$(MAKE) --no-print-directory test VENV=$(LATEST_VENV) PYTHON=$(LATEST_PYTHON) EXTRA_PINS="'anndata>=0.13'"

bench: $(VENV)/.test-installed
	$(PY) -m benchmarks run --size medium

bench-smoke: $(VENV)/.test-installed
	$(PY) -m benchmarks run --size tiny --repeats 1

clean:
	rm -rf $(VENV) $(LATEST_VENV) build *.egg-info src/*.egg-info .pytest_cache .hypothesis
