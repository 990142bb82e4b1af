# make test: Debian packages (as root), the virtual environment, the lab, ruff and pytest.
# make run:  the console on 127.0.0.1:8000 with embedded defaults (scripts/run).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
# The stamp's name carries the requirements' hash: a change of either file reinstalls.
REQUIREMENTS_SHA := $(shell cat requirements.txt requirements-dev.txt | sha256sum | cut -c1-16)
STAMP := $(VENV)/.installed-$(REQUIREMENTS_SHA)

.PHONY: venv deps build-deps test lint bench run

venv: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	rm -f $(VENV)/.installed-*
	touch $@

deps:
	scripts/deps.sh

test: deps venv
	scripts/test.sh

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: deps venv
	scripts/test.sh bench

run: build-deps venv
	./scripts/run

build-deps:
	scripts/deps.sh build
