"""A profile's traits in the admin: edited as the shop's, removals listed and respected."""

import pytest

from personalization.models import Trait
from personalization.traits import trait_remove, traits_set
from tests.personalization.test_admin import _change_form_data, url

pytestmark = pytest.mark.django_db


def _prefix(response, model):
    return next(
        inline.formset.prefix
        for inline in response.context["inline_admin_formsets"]
        if inline.formset.model is model
    )


def test_the_profile_page_shows_traits_with_how_sure_and_the_removed_ones(
    admin_client, profile_factory
):
    ann = profile_factory(email="ann@example.com")
    traits_set(profile=ann, values={"style": "bold"}, source="inferred", confidence=0.85)
    trait_remove(profile=ann, key="budget", by="preference_centre")

    page = admin_client.get(url("profile", "change", ann.pk)).content.decode()

    assert "fairly sure (85%)" in page
    assert "traits the customer removed" in page.lower() and "budget" in page


def test_a_trait_saved_in_the_admin_is_the_shops_and_replaces_a_guess(
    admin_client, profile_factory
):
    ann = profile_factory(email="ann@example.com")
    traits_set(profile=ann, values={"style": "bold"}, source="inferred", confidence=0.85)
    trait_remove(profile=ann, key="budget", by="preference_centre")
    page = url("profile", "change", ann.pk)
    response = admin_client.get(page)
    data = _change_form_data(response)
    prefix = _prefix(response, Trait)
    data.update(
        {
            f"{prefix}-0-value": "calm",
            f"{prefix}-TOTAL_FORMS": "3",
            f"{prefix}-1-key": "shoe_size",
            f"{prefix}-1-value": "38",
            f"{prefix}-1-profile": str(ann.pk),
            f"{prefix}-2-key": "budget",
            f"{prefix}-2-value": "low",
            f"{prefix}-2-profile": str(ann.pk),
            "_save": "Save",
        }
    )

    response = admin_client.post(page, data, follow=True)

    assert response.status_code == 200
    assert {t.key: (t.value, t.source, t.confidence) for t in Trait.objects.all()} == {
        "style": ("calm", "shop", None),
        "shoe_size": (38, "shop", None),
    }
    messages = [str(m) for m in response.context["messages"]]
    assert "Not recorded, as the customer removed them: budget." in messages


def test_a_bad_key_is_an_error_on_the_form(admin_client, profile_factory):
    ann = profile_factory(email="ann@example.com")
    page = url("profile", "change", ann.pk)
    response = admin_client.get(page)
    data = _change_form_data(response)
    prefix = _prefix(response, Trait)
    data.update(
        {
            f"{prefix}-TOTAL_FORMS": "1",
            f"{prefix}-0-key": "shoe size",
            f"{prefix}-0-value": "38",
            f"{prefix}-0-profile": str(ann.pk),
            "_save": "Save",
        }
    )
    response = admin_client.post(page, data)
    assert response.status_code == 200
    assert not Trait.objects.exists()
