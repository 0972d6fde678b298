"""seed_demo, and the process supervisor behind rundemo."""

import datetime as dt
import io
import re
import sys
from urllib.parse import urlsplit

import pytest
import time_machine
from django.core.management import call_command, get_commands
from django.test import Client

from demo_shop.shop.catalogue_data import PRODUCTS
from demo_shop.shop.models import Product as ShopProduct
from demo_shop.shop.supervisor import Supervisor
from personalization import models as pzn
from personalization.consent import consent_state


def seed(*args):
    out, err = io.StringIO(), io.StringIO()
    call_command("seed_demo", *args, stdout=out, stderr=err)
    return out.getvalue() + err.getvalue()


def test_seed_demo_catalogue_is_mirrored_and_idempotent(db):
    first = seed("--no-synthetic")
    second = seed("--no-synthetic")

    assert f"{len(PRODUCTS)} created" in first
    assert f"0 created, 0 updated, {len(PRODUCTS)} unchanged" in second
    assert ShopProduct.objects.count() == pzn.Product.objects.count() == len(PRODUCTS) >= 35
    sensitive = set(
        pzn.Product.objects.filter(is_sensitive=True).values_list("category_path", flat=True)
    )
    assert sensitive and all(path.startswith("Health") for path in sensitive)
    coffee = pzn.Product.objects.get(sku="house-blend-coffee-beans")
    assert coffee.repurchase_interval_days == 21 and coffee.currency == "EUR"
    top_levels = {c.split(" > ")[0] for c in ShopProduct.objects.values_list("category", flat=True)}
    assert len(top_levels) >= 5


def test_seed_demo_restores_a_changed_product(db):
    seed("--no-synthetic")
    ShopProduct.objects.filter(slug="espresso-roast").update(title="Renamed")

    out = seed("--no-synthetic")

    assert "1 updated" in out
    assert pzn.Product.objects.get(sku="espresso-roast").title == "Espresso Roast 1 kg"


@pytest.mark.skipif(
    "generate_shop_data" not in get_commands(), reason="personalization has no generator yet"
)
def test_seed_demo_seeds_synthetic_customers_once(db, client):
    first = seed("--profiles", "20")
    counts = (pzn.Profile.objects.count(), pzn.Order.objects.count())
    assert counts[0] >= 20 and counts[1] > 0
    # The admin shows segments at once, before Beat's first refresh, with an example rule.
    assert "Refreshed 6 segment(s)" in first
    assert pzn.Segment.objects.get(slug="coffee_regulars").kind == "rule"
    members = dict(pzn.Segment.objects.values_list("slug", "member_count"))
    assert sum(members.values()) > 0
    assert members == {
        slug: pzn.SegmentMembership.objects.current().filter(segment__slug=slug).count()
        for slug in members
    }
    # ...and a recommendation model, so a product's admin page shows its neighbours.
    assert pzn.RecommendationModel.objects.current().exists()
    # ...so the shop's product pages show what customers also bought straight away.
    seeded = pzn.ProductNeighbour.objects.current().filter(co_purchases__gt=0).first()
    page = client.get(ShopProduct.objects.get(pk=seeded.product.external_id).get_absolute_url())
    assert page.context["shelf"].heading == "Customers also bought"

    out = seed("--profiles", "20")

    assert "there already; skipped" in out
    assert (pzn.Profile.objects.count(), pzn.Order.objects.count()) == counts
    # The synthetic customers bought from the shop's own catalogue.
    shop_ids = {str(pk) for pk in ShopProduct.objects.values_list("pk", flat=True)}
    bought = set(pzn.OrderLine.objects.values_list("product__external_id", flat=True))
    assert bought and bought <= shop_ids


# --- Supervisor -------------------------------------------------------------------------------

SLEEPER = [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(120)"]


def test_when_one_child_dies_the_others_are_stopped_and_the_run_fails():
    out = io.StringIO()
    supervisor = Supervisor(out=out, grace_seconds=5)
    supervisor.add("sleeper", SLEEPER)
    supervisor.add("crasher", [sys.executable, "-c", "import sys; sys.exit(3)"])

    code = supervisor.run()

    assert code == 1
    assert supervisor.stop_reason == "crasher exited with status 3"
    sleeper = supervisor.children[0].process
    assert sleeper.returncode is not None  # stopped, not left behind
    assert "[sleeper] stopped" in out.getvalue()


def test_a_stop_request_stops_every_child_and_the_run_succeeds():
    out = io.StringIO()
    supervisor = Supervisor(out=out, grace_seconds=5)
    supervisor.add("one", SLEEPER)
    supervisor.add("two", SLEEPER)

    code = supervisor.run(when_started=lambda: supervisor.request_stop("SIGINT"))

    assert code == 0
    assert all(child.process.returncode is not None for child in supervisor.children)
    # Dying of the SIGTERM it was sent is a clean stop, not a status to worry about.
    assert "[one] stopped.\n" in out.getvalue() and "status -15" not in out.getvalue()


def test_child_output_is_shown_with_its_name():
    out = io.StringIO()
    supervisor = Supervisor(out=out)
    supervisor.add("talker", [sys.executable, "-c", "print('hello from the child')"])

    supervisor.run()

    assert "talker | hello from the child" in out.getvalue()


def test_the_seeded_campaign_goes_out_with_a_working_one_click_unsubscribe(db, client, settings):
    """What a newcomer sees: Beat (here run_due) sends the scheduled campaign to the loyal
    customers; the outbox shows it with its headers, and its one-click button unsubscribes."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    seed("--profiles", "60")
    draft = pzn.Campaign.objects.get(status=pzn.CampaignStatus.DRAFT)
    assert draft.include_segments.get().slug == "coffee_regulars"
    scheduled = pzn.Campaign.objects.get(status=pzn.CampaignStatus.SCHEDULED)

    call_command("run_due", stdout=io.StringIO(), stderr=io.StringIO())

    sent = scheduled.messages.filter(state=pzn.MessageState.SENT)
    assert sent.exists()
    # Everyone planned got a decision, and every skip says why.
    assert not scheduled.messages.filter(state=pzn.MessageState.PLANNED).exists()
    assert not scheduled.messages.filter(state=pzn.MessageState.SKIPPED, reason="").exists()
    listing = client.get("/outbox/").content.decode()
    assert "new in the shop this week" in listing
    detail_path = next(
        path
        for path in re.findall(r'href="(/outbox/[^"]+/\d+/)"', listing)
        if "new in the shop" in client.get(path).content.decode()
    )
    page = client.get(detail_path)
    target = page.context["message"].one_click_unsubscribe_url
    assert target and page.context["message"].html
    profile = pzn.Profile.objects.get(email=page.context["message"].to)

    # What a mail client does: a POST, no cookie, no CSRF token.
    mail_client = Client(enforce_csrf_checks=True)
    answer = mail_client.post(urlsplit(target).path, {"List-Unsubscribe": "One-Click"})

    assert answer.status_code == 200
    assert consent_state(profile=profile, purpose="email_marketing") == "withdrawn"


def test_the_seeded_shop_gives_every_kind_of_flow_something_to_send(db, client, settings):
    """Within minutes of `make demo`, without setup: Beat (here run_due, six minutes on) plans
    and sends flow messages for the seeded situations, each with its reason."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    noon = dt.datetime(2027, 3, 2, 12, tzinfo=dt.UTC)  # daytime from London to Istanbul
    with time_machine.travel(noon):
        seed("--profiles", "60")

    with time_machine.travel(noon + dt.timedelta(minutes=6), tick=False):
        call_command("run_due", stdout=io.StringIO(), stderr=io.StringIO())

    flow_messages = pzn.Message.objects.filter(source=pzn.MessageSource.FLOW)
    sent_by_flow = set(
        flow_messages.filter(state=pzn.MessageState.SENT).values_list(
            "flow_step__flow__kind", flat=True
        )
    )
    assert {pzn.FlowKind.WELCOME, pzn.FlowKind.ABANDONED_CART, pzn.FlowKind.BIRTHDAY} <= (
        sent_by_flow
    )
    # Nothing undecided, and every message held back or skipped says why.
    assert not flow_messages.filter(state=pzn.MessageState.PLANNED).exists()
    assert not flow_messages.filter(state__in=["skipped", "deferred"], reason="").exists()
    listing = client.get("/outbox/").content.decode()
    assert "Welcome to" in listing and "Your cart is saved for you" in listing
