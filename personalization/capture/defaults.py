"""The consent wordings every shop starts with, so that consent forms work out of the box.

Published by migration 0015 and, should the table be emptied (a test database flushed between
transactional tests, tests run without migrations), again after every ``migrate`` and
``flush`` (``post_migrate``, as Django recreates content types and permissions). Only a purpose
and language without any wording gets its default: a shop's own versions are never touched.

These texts are evidence of what customers were shown as version 1: never edit them. A shop
changes its words by publishing a new version (admin › Consent wordings). Migration 0015 holds
its own copy, and a test checks the two agree.
"""

from __future__ import annotations

from django.db import DEFAULT_DB_ALIAS, connections

from ..models import ConsentWording

DEFAULT_WORDINGS: dict[str, dict[str, str]] = {
    "email_marketing": {
        "en": (
            "Email me news, offers and product tips. I can unsubscribe at any time with the "
            "link in every email."
        ),
        "sv": (
            "Jag vill få nyheter, erbjudanden och produkttips via e-post. Jag kan när som helst "
            "avregistrera mig via länken i varje mejl."
        ),
        "tr": (
            "Bana e-postayla haberler, fırsatlar ve ürün önerileri gönderin. Her e-postadaki "
            "bağlantıyla istediğim zaman abonelikten çıkabilirim."
        ),
    },
    "personalization": {
        "en": (
            "Use what I look at and buy in this shop to tailor the products and offers I see, "
            "on the website and in emails. I can switch this off at any time."
        ),
        "sv": (
            "Använd det jag tittar på och köper i den här butiken för att anpassa vilka "
            "produkter och erbjudanden jag ser, både på webbplatsen och i mejl. Jag kan när som "
            "helst stänga av det."
        ),
        "tr": (
            "Bu mağazada baktığım ve satın aldığım ürünler, sitede ve e-postalarda gördüğüm "
            "ürünleri ve fırsatları bana göre kişiselleştirmek için kullanılsın. Bunu istediğim "
            "zaman kapatabilirim."
        ),
    },
}


def consent_wordings_ensure_defaults(*, using: str = DEFAULT_DB_ALIAS) -> int:
    """Publish the default wording, as version 1, for each purpose and language that has no
    wording at all. Idempotent; returns how many were published."""
    present = set(ConsentWording.objects.using(using).values_list("purpose", "language").distinct())
    missing = [
        ConsentWording(
            purpose=purpose,
            language=language,
            number=1,
            version=f"{purpose}.{language}.1",
            text=text,
        )
        for purpose, texts in DEFAULT_WORDINGS.items()
        for language, text in texts.items()
        if (purpose, language) not in present
    ]
    # A concurrent migrate publishing the same: the unique version keeps one of each.
    ConsentWording.objects.using(using).bulk_create(missing, ignore_conflicts=True)
    return len(missing)


def consent_wordings_ensure_after_migrate(**kwargs) -> None:
    using = kwargs.get("using", DEFAULT_DB_ALIAS)
    if ConsentWording._meta.db_table in connections[using].introspection.table_names():
        consent_wordings_ensure_defaults(using=using)
