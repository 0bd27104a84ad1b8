# Kami: `make run` serves the demo shop, `make test` runs the whole suite (see README).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
export HOST PORT

.PHONY: run test lint format bench clean messages compilemessages

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

# The development shop. Settings default to production (DEBUG off); shop.devmode marks this
# checkout as development (var/DEVELOPMENT) after refusing a non-loopback HOST unless told
# twice (DEBUG=1 KAMI_EXPOSE_DEV_SHOP=yes-anyone-can-take-free-keys), see README.
run: $(VENV)/.installed compilemessages
	$(BIN)/python -m shop.devmode
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo
	$(BIN)/python manage.py serve

test: $(VENV)/.installed compilemessages
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Translations (README "Languages"): the committed .po files are the source, the .mo files
# are built from them (msgfmt, from gettext). `make messages` refreshes the msgids after a
# template or message changed; then translate the new entries (tests/i18n checks none is left).
MESSAGES_IGNORE := --ignore='.venv/*' --ignore='tests/*' --ignore='bench/*' --ignore='var/*'

compilemessages: $(VENV)/.installed
	DEBUG=1 $(BIN)/python manage.py compilemessages --ignore='.venv/*' -v 0

messages: $(VENV)/.installed
	DEBUG=1 $(BIN)/python manage.py makemessages -l zh_Hans --no-obsolete $(MESSAGES_IGNORE)

# Style, formatting and the architecture: the allowed imports between apps (pyproject.toml).
lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache
	$(BIN)/mypy

format: $(VENV)/.installed
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The speed figures (docs/benchmarks.md): production shape on a throw-away database, ~8 min.
# e.g. make bench BENCH_ARGS="--pool threads --concurrency 8"; BENCH_ARGS=--quick to smoke-test.
bench: $(VENV)/.installed
	$(BIN)/python bench/load.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var/test-results.xml
