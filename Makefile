# Two commands on a fresh machine:  make demo   and   make test
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint install messages clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# axe-core, the accessibility checker the browser tests run (fetched from npm, hash checked).
AXE := $(VENV)/axe-core/axe.min.js
$(AXE): tests/tools/fetch_axe.py | $(STAMP)
	$(BIN)/python tests/tools/fetch_axe.py $(AXE)

install: $(STAMP)

## Run the demo shop with a Celery worker and Beat on embedded defaults.
demo: $(STAMP)
	$(BIN)/python manage.py rundemo

## Run the whole test suite (SQLite unless DATABASE_URL is set).
test: $(STAMP) $(AXE)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

# The languages besides English (the source) that the app and the demo are translated into.
LANGUAGES := sv tr
MAKEMESSAGES := makemessages $(addprefix -l ,$(LANGUAGES)) --add-location=file --ignore=migrations
COMPILEMESSAGES := compilemessages $(addprefix -l ,$(LANGUAGES))

## Re-extract the strings of the app and the demo into their catalogues (msgmerge keeps the
## translations; new strings come in untranslated) and compile them. Needs GNU gettext.
messages: $(STAMP)
	cd personalization && ../$(BIN)/python ../manage.py $(MAKEMESSAGES)
	cd demo_shop && ../$(BIN)/python ../manage.py $(MAKEMESSAGES)
	cd personalization && ../$(BIN)/python ../manage.py $(COMPILEMESSAGES)
	cd demo_shop && ../$(BIN)/python ../manage.py $(COMPILEMESSAGES)

clean:
	rm -rf $(VENV) var .pytest_cache
