"""Every string marked for translation in a customer-facing file is in the catalogues: nobody
added a page or a message and forgot `make messages` (tests/test_translations.py then checks
that each is translated). Read with Django's own template-to-gettext conversion and Python's
tokenizer, so no gettext tools are needed."""

import ast
import io
import re
import tokenize
from pathlib import Path

import pytest
from django.utils.translation.template import templatize

from tests.test_translations import APP_CUSTOMER_FILES, LANGUAGES, catalogue

ROOT = Path(__file__).resolve().parent.parent
# The calls whose first argument is a msgid (pgettext's is its context: not used here).
MARKERS = {"_", "gettext", "gettext_lazy", "ngettext", "ngettext_lazy", "gettext_noop"}
TEMPLATE_SUFFIXES = {".html", ".txt"}
# templatize() writes each msgid as a call with one string literal (any newlines inside it).
TEMPLATE_CALL = re.compile(r"\b(?:n?gettext)\(u?('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")", re.S)


def customer_files(name: str) -> list[Path]:
    if name == "demo":
        base = ROOT / "demo_shop"
        return [
            path
            for path in base.rglob("*")
            if path.suffix in TEMPLATE_SUFFIXES | {".py"} and "migrations" not in path.parts
        ]
    base = ROOT / "personalization"
    return [
        path
        for prefix in APP_CUSTOMER_FILES
        for path in ([base / prefix] if (base / prefix).is_file() else (base / prefix).rglob("*"))
        if path.suffix in TEMPLATE_SUFFIXES | {".py"}
    ]


def marked(path: Path) -> set[str]:
    """The msgids marked in a template or a Python module."""
    source = path.read_text(encoding="utf-8")
    if path.suffix in TEMPLATE_SUFFIXES:
        converted = templatize(source, origin=str(path))
        return {ast.literal_eval(literal) for literal in TEMPLATE_CALL.findall(converted)}
    tokens = [
        token
        for token in tokenize.generate_tokens(io.StringIO(source).readline)
        if token.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT)
    ]
    found = set()
    for index, token in enumerate(tokens[:-2]):
        if not (
            token.type == tokenize.NAME
            and token.string in MARKERS
            and tokens[index + 1].string == "("
            and tokens[index + 2].type == tokenize.STRING
        ):
            continue
        parts, after = [], index + 2
        while tokens[after].type == tokenize.STRING:  # "implicit " "concatenation"
            parts.append(tokens[after].string)
            after += 1
        if any(part.lstrip("rRuUbB").startswith(("f", "F")) for part in parts):
            continue  # not a literal msgid
        found.add("".join(ast.literal_eval(part) for part in parts))
    return found


@pytest.mark.parametrize("name", ["app", "demo"])
@pytest.mark.parametrize("language", LANGUAGES)
def test_every_marked_customer_string_is_in_the_catalogue(name, language):
    msgids = {
        message.id[0] if message.pluralizable else message.id
        for message in catalogue(name, language)
        if message.id
    }
    missing = {
        f"{path.relative_to(ROOT)}: {msgid!r}"
        for path in customer_files(name)
        for msgid in marked(path)
        if msgid and msgid not in msgids
    }
    assert not missing, "run `make messages` and translate:\n" + "\n".join(sorted(missing))


def test_the_reader_finds_what_is_marked(tmp_path):
    page = tmp_path / "page.html"
    page.write_text(
        '{% load i18n %}{% translate "Hello" %}{% blocktranslate with n=x %}For {{ n }}.'
        "{% endblocktranslate %}"
    )
    module = tmp_path / "module.py"
    module.write_text('x = _("One " "two")\ny = gettext_lazy(\n    "Three"\n)\nz = _(f"{x}")\n')
    assert marked(page) == {"Hello", "For %(n)s."}
    assert marked(module) == {"One two", "Three"}
