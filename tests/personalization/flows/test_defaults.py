"""The flows every installation starts with: all on, in the site's language, and their copy
passes the same checks a marketer's would."""

import pytest

from personalization.flows import DEFAULTS, flows_ensure
from personalization.messaging.lint import step_lint
from personalization.models import Flow, FlowKind, FlowStep

pytestmark = pytest.mark.django_db


def test_migrate_creates_every_flow_on_with_its_steps():
    flows = {flow.kind: flow for flow in Flow.objects.all()}

    assert set(flows) == set(FlowKind.values)
    assert all(flow.enabled for flow in flows.values())
    for kind, default in DEFAULTS.items():
        assert flows[kind].steps.count() == len(default.steps)


@pytest.mark.parametrize("language", ["en", "sv", "tr"])
def test_the_default_copy_is_in_the_sites_language_and_passes_the_copy_check(settings, language):
    Flow.objects.all().delete()
    settings.LANGUAGE_CODE = language

    assert flows_ensure() == len(DEFAULTS)

    subjects = set(FlowStep.objects.values_list("subject", flat=True))
    assert ("Happy birthday!" in subjects) == (language == "en")
    for step in FlowStep.objects.select_related("flow"):
        report = step_lint(step=step)
        assert report.issues == [], (language, step.flow.kind, step.position, report.issues)


def test_a_flow_the_marketer_changed_is_left_as_it_is():
    cart = Flow.objects.get(kind=FlowKind.ABANDONED_CART)
    cart.enabled, cart.name = False, "Our cart reminder"
    cart.save()
    Flow.objects.filter(kind=FlowKind.BIRTHDAY).delete()

    assert flows_ensure() == 1  # only the deleted one comes back

    cart.refresh_from_db()
    assert (cart.enabled, cart.name) == (False, "Our cart reminder")
