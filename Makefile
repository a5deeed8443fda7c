# The two commands: `make demo` and `make test`. Everything else is a step of theirs.
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU wheel is on disk on the team's machines; a CUDA machine sets its own build here.
TORCH_SPEC ?= torch==2.13.0
PYTEST_ARGS ?=

.PHONY: demo test install lint clean-demo

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet "$(TORCH_SPEC)"
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

# run_demo starts the web server, the worker and beat first, then runs the demo's jobs on the
# worker; it writes .env.demo, the settings that ./manage reads in any later shell. Its knobs
# (`make demo DEMO_STEPS=50`, README "The demo") reach it as they are: make exports
# command-line variables, and the environment's, to its recipes.
demo: install
	DEBUG=1 VENV=$(VENV) ./manage run_demo

# The conventions are checked before the tests: ruff (banned APIs, complexity, import order),
# the import contracts (pyproject.toml [tool.importlinter]) and mypy over the pure packages.
test: install lint
	$(VENV)/bin/pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

clean-demo:
	rm -rf var/ .env.demo
