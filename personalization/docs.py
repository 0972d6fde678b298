"""Where the documentation lives, for links in error messages and system checks.

Messages link to the published pages rather than to ``docs/…`` paths, which exist only in the
repository, not in the installed package. ``pyproject.toml``'s Documentation URL is this base.
"""

DOCS_BASE_URL = "https://github.com/django-personalization/django-personalization/blob/main/docs/"


def docs_url(page: str) -> str:
    """The address of ``page`` (a path below ``docs/``, e.g. ``"reference/settings.md"``)."""
    return DOCS_BASE_URL + page.lstrip("/")
