"""Migration 0016: the JSON Profile.traits become Trait rows recorded by the shop, and back."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from personalization.models import Trait

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("personalization", "0015_consent_wording")]
AFTER = [("personalization", "0016_trait")]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def test_json_traits_become_rows_recorded_by_the_shop_and_come_back_on_reversal():
    apps = _migrate(BEFORE)
    try:
        old = apps.get_model("personalization", "Profile")
        ann = old.objects.create(
            email="ann@example.com",
            traits={
                "plan": "gold",
                "shoe_size": 38,
                "ratio": 0.5,
                "vip": True,
                "city": "Göteborg",
                "gone": None,  # nothing a rule could read: dropped
                "nested": {"a": 1},
                "bad key": "x",
            },
        )
        bob = old.objects.create(email="bob@example.com", traits={})
        _migrate(AFTER)
        rows = {
            (t.profile_id, t.key): (t.value, t.source, t.confidence) for t in Trait.objects.all()
        }
        assert rows == {
            (ann.pk, "plan"): ("gold", "shop", None),
            (ann.pk, "shoe_size"): (38, "shop", None),
            (ann.pk, "ratio"): (0.5, "shop", None),
            (ann.pk, "vip"): (True, "shop", None),
            (ann.pk, "city"): ("Göteborg", "shop", None),
        }
        # Lookups find the migrated text as they find text written by the app.
        assert Trait.objects.filter(value__in=["Göteborg"]).count() == 1
        assert not Trait.objects.filter(profile_id=bob.pk).exists()

        apps = _migrate(BEFORE)
        old = apps.get_model("personalization", "Profile")
        assert old.objects.get(pk=ann.pk).traits == {
            "plan": "gold",
            "shoe_size": 38,
            "ratio": 0.5,
            "vip": True,
            "city": "Göteborg",
        }
        assert old.objects.get(pk=bob.pk).traits == {}
    finally:
        _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
