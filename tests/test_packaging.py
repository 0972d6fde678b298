"""What someone who installed the wheel gets: a licence, project links, docs they can open."""

import ast
import re
import tomllib
from pathlib import Path

import pytest
from django.test import override_settings

import personalization
from personalization.conf import DEFAULTS, app_settings
from personalization.docs import DOCS_BASE_URL, docs_url
from personalization.exceptions import ConfigurationError

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
PROJECT = "https://github.com/django-personalization/django-personalization"


def test_the_licence_file_is_the_bsd_3_clause_that_pyproject_declares():
    assert PYPROJECT["license"] == "BSD-3-Clause"
    assert "LICENSE" in PYPROJECT["license-files"]
    text = (ROOT / "LICENSE").read_text()
    assert "Redistribution and use in source and binary forms" in text
    assert "Neither the name of the copyright holder nor the names of its" in text


def test_pyproject_names_the_project_pages():
    urls = PYPROJECT["urls"]
    assert urls["Homepage"] == urls["Source"] == PROJECT
    assert urls["Issues"] == f"{PROJECT}/issues"
    # The same base the error messages link to, so the two cannot drift apart.
    assert urls["Documentation"] == DOCS_BASE_URL


def _heading_anchors(page: Path) -> set[str]:
    """The anchors GitHub gives the page's headings ("### `SITE_URL`" → "site_url")."""
    return {
        re.sub(r"[^\w\- ]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in page.read_text().splitlines()
        if line.startswith("#")
    }


def _docs_links_in_the_app() -> set[str]:
    """Every docs_url() target in the app: literal pages, and pages with a setting's anchor."""
    package = Path(personalization.__file__).parent
    links = set()
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", getattr(node.func, "attr", None)) == "docs_url"
                and node.args
            ):
                continue
            arg = node.args[0]
            if isinstance(arg, ast.Constant):
                links.add(arg.value)
            elif isinstance(arg, ast.BinOp) and isinstance(arg.left, ast.Constant):
                # docs_url("reference/settings.md#" + name.lower()): any setting's section.
                links.update(f"{arg.left.value}{key.lower()}" for key in DEFAULTS)
            else:
                links.add(f"<not checkable: {ast.unparse(arg)} in {path.name}>")
    return links


def test_docs_links_are_absolute_urls_to_pages_that_exist():
    assert docs_url("reference/settings.md") == f"{DOCS_BASE_URL}reference/settings.md"
    assert DOCS_BASE_URL.startswith(f"{PROJECT}/") and DOCS_BASE_URL.endswith("/docs/")
    links = _docs_links_in_the_app()
    assert "reference/settings.md" in links
    broken = []
    for link in sorted(links):
        page, _sep, anchor = link.partition("#")
        path = ROOT / "docs" / page
        if not path.is_file() or (anchor and anchor not in _heading_anchors(path)):
            broken.append(link)
    assert broken == []


def test_an_unknown_setting_links_to_the_settings_reference_online():
    with override_settings(PERSONALIZATION={"SENSITIVE_CATEGORY": ["Health"]}):
        with pytest.raises(ConfigurationError) as raised:
            app_settings.BATCH_SIZE  # noqa: B018
    assert docs_url("reference/settings.md") in str(raised.value)
    assert "See docs/" not in str(raised.value)


def test_an_adapter_that_cannot_be_imported_links_to_the_adapter_setting():
    with override_settings(PERSONALIZATION={"ADAPTER": "shop.nowhere.Adapter"}):
        with pytest.raises(ConfigurationError) as raised:
            app_settings.ADAPTER  # noqa: B018
    assert docs_url("reference/settings.md#adapter") in str(raised.value)


def _strings_outside_docstrings(path: Path):
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if id(node) not in docstrings:
                yield node.lineno, node.value


def test_no_message_in_the_app_points_at_a_path_only_the_repository_has():
    """Messages link through docs_url(); a bare ``docs/….md`` is useless after pip install."""
    package = Path(personalization.__file__).parent
    offenders = [
        f"{path.relative_to(package)}:{line}: {value!r}"
        for path in package.rglob("*.py")
        for line, value in _strings_outside_docstrings(path)
        if re.search(r"\bdocs/[\w/.-]+\.md\b", value) and DOCS_BASE_URL not in value
    ]
    assert offenders == []
