"""The Swedish and Turkish catalogues: complete where customers read them, compiled, and sound.

Read with Babel, so the tests need no gettext tools. `make messages` refreshes the catalogues.
"""

from __future__ import annotations

import gettext
import re
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.pofile import read_po
from django.utils import translation

from personalization.models import (
    Channel,
    ConsentSource,
    ConsentState,
    Frequency,
    Greeting,
    Purpose,
    TraitSource,
)

ROOT = Path(__file__).resolve().parent.parent
LANGUAGES = ("sv", "tr")
PLURAL_FORMS = {"sv": "nplurals=2; plural=(n != 1);", "tr": "nplurals=2; plural=(n != 1);"}
LOCALE_DIRS = {"app": ROOT / "personalization" / "locale", "demo": ROOT / "demo_shop" / "locale"}

# Where the app's customers read its strings (locations are relative to personalization/):
# its pages and emails, the messages those pages show, the preference centre, the consent
# capture forms and the words for how sure a trait is.
APP_CUSTOMER_FILES = (
    "templates/personalization/",
    "views.py",
    "confirmation.py",
    "exceptions.py",
    "preferences/",
    "capture/",
    "traits/selectors.py",
    "recommendations/recommend.py",
)
# Choices whose labels customers see on those pages and in the demo's account page (the
# consent history shows ConsentSource, the trait list TraitSource).
APP_CUSTOMER_CHOICES = (
    Purpose,
    ConsentState,
    Frequency,
    Greeting,
    Channel,
    ConsentSource,
    TraitSource,
)

CATALOGUES = [(name, language) for name in LOCALE_DIRS for language in LANGUAGES]


def po_path(name: str, language: str) -> Path:
    return LOCALE_DIRS[name] / language / "LC_MESSAGES" / "django.po"


def catalogue(name: str, language: str) -> Catalog:
    with po_path(name, language).open("rb") as po:
        return read_po(po, locale=language)


def entries(catalog: Catalog) -> list[Message]:
    """The catalogue's messages, without the header (obsolete ones are kept apart by Babel)."""
    return [message for message in catalog if message.id]


def choice_msgids() -> set[str]:
    with translation.override(None):  # no catalogue: a label is its msgid
        return {str(label) for choices in APP_CUSTOMER_CHOICES for label in choices.labels}


def customer_facing(name: str, message: Message) -> bool:
    if name == "demo":
        return True  # every string of the demo shop is for its customers
    msgid = message.id[0] if message.pluralizable else message.id
    files = [location for location, _line in message.locations]
    return msgid in choice_msgids() or any(f.startswith(APP_CUSTOMER_FILES) for f in files)


def strings(message: Message) -> list[str]:
    return list(message.string) if message.pluralizable else [message.string]


def translated(message: Message) -> bool:
    return not message.fuzzy and all(strings(message))


@pytest.mark.parametrize(("name", "language"), CATALOGUES)
def test_every_customer_facing_string_is_translated(name, language):
    catalog = catalogue(name, language)
    assert catalog.plural_forms == PLURAL_FORMS[language]
    assert not catalog.fuzzy, "the header is marked fuzzy: msgfmt would drop it"
    customer = [message for message in entries(catalog) if customer_facing(name, message)]
    missing = [message.id for message in customer if not translated(message)]
    assert not missing, f"untranslated or fuzzy in {po_path(name, language)}: {missing}"
    if name == "demo":
        assert len(customer) > 100
    else:
        # Each place customers read from still holds strings, so a move can't empty the test.
        for prefix in APP_CUSTOMER_FILES:
            assert any(
                location.startswith(prefix)
                for message in customer
                for location, _line in message.locations
            ), f"no string of personalization/{prefix} in the catalogue"
        ids = {message.id for message in entries(catalog) if not message.pluralizable}
        assert choice_msgids() <= ids, "a customer-facing choice label is not in the catalogue"


@pytest.mark.parametrize(("name", "language"), CATALOGUES)
def test_the_committed_mo_is_compiled_from_the_po(name, language):
    """`make messages` compiles; a .po edited without it leaves the .mo behind."""
    expected: dict[str | tuple[str, int], str] = {}
    for message in entries(catalogue(name, language)):
        if not translated(message):
            continue  # msgfmt leaves out untranslated and fuzzy messages
        context = f"{message.context}\x04" if message.context else ""
        if message.pluralizable:
            for index, text in enumerate(message.string):
                expected[(context + message.id[0], index)] = text
        else:
            expected[context + message.id] = message.string
    with po_path(name, language).with_suffix(".mo").open("rb") as mo:
        compiled = gettext.GNUTranslations(mo)
    catalog = {key: text for key, text in compiled._catalog.items() if key != ""}
    assert catalog == expected, "the .mo is stale: run `make messages`"
    assert compiled.plural(1) == 0 and compiled.plural(2) == 1


PYTHON_FORMAT = re.compile(r"%(?:\((\w+)\))?[-#0 +]*(?:\d+|\*)?(?:\.\d+)?([diouxXeEfFgGcrsa%])")
BRACE_FORMAT = re.compile(r"\{\{?\s*[\w.]+\s*\}?\}")
HTML_TAG = re.compile(r"</?[a-zA-Z][^>]*>")


def placeholders(text: str) -> list[str]:
    python = [f"%({name}){kind}" for name, kind in PYTHON_FORMAT.findall(text) if kind != "%"]
    return sorted(python + BRACE_FORMAT.findall(text) + HTML_TAG.findall(text))


@pytest.mark.parametrize(("name", "language"), CATALOGUES)
def test_translations_keep_the_placeholders_and_markup(name, language):
    wrong = []
    for message in entries(catalogue(name, language)):
        sources = list(message.id) if message.pluralizable else [message.id]
        for index, text in enumerate(strings(message)):
            if not text:
                continue
            source = sources[min(index, len(sources) - 1)]
            if placeholders(text) != placeholders(source):
                wrong.append((source, text))
    assert not wrong


def test_the_placeholder_check_notices_a_changed_name():
    assert placeholders("Hej %(namn)s!") != placeholders("Hello %(name)s,")
    assert placeholders("<b>%(n)d</b>") != placeholders("<strong>%(n)d</strong>")
    assert placeholders("Hej %(name)s! 100 %%") == placeholders("Hello %(name)s,")
