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

demo: install
	DEBUG=1 $(PY) manage.py run_demo

test: install
	$(VENV)/bin/pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .

clean-demo:
	rm -rf var/
