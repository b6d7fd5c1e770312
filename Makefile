# Everything a fresh machine needs, in two commands: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip

.PHONY: demo test bench bench-smoke clean system-deps

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.demo-installed: pyproject.toml | $(PY)
	$(PIP) install --quiet -e '.[lazy,fast,cli]'
	touch $@

$(VENV)/.test-installed: pyproject.toml | $(PY)
	$(PIP) install --quiet -e '.[test,bench]'
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

bench: $(VENV)/.test-installed
	$(PY) -m benchmarks run --size medium

bench-smoke: $(VENV)/.test-installed
	$(PY) -m benchmarks run --size tiny --repeats 1

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache .hypothesis
