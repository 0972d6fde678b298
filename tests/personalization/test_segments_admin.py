"""The segment admin as a marketer uses it: sizes, trend, refresh, members and history."""

import datetime as dt
import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from personalization.admin.base import LargeTablePaginator
from personalization.commerce import order_record
from personalization.identity import Identity
from personalization.models import (
    ConsentRecord,
    Profile,
    Segment,
    SegmentDailyCount,
    SegmentMembership,
    Topic,
    TopicPreference,
)
from personalization.segments import segment_refresh

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)


def url(model: str, view: str = "changelist", *args) -> str:
    return reverse(f"admin:personalization_{model}_{view}", args=args)


@pytest.fixture
def new_customers(time_machine, product_factory, django_capture_on_commit_callbacks):
    time_machine.move_to(NOW, tick=False)
    product_factory(external_id="mug")
    with django_capture_on_commit_callbacks(execute=True):
        for index in range(3):
            order_record(
                order_id=f"O{index}",
                identity=Identity(email=f"c{index}@example.com"),
                placed_at=NOW - dt.timedelta(days=index),
                total="12.50",
                currency_code="EUR",
                lines=[{"product_id": "mug", "quantity": 1, "unit_price": "12.50"}],
            )
    return Segment.objects.get(slug="new_customer")


def test_the_list_shows_sizes_trend_and_last_refresh(admin_client, new_customers):
    SegmentDailyCount.objects.create(
        segment=new_customers, day=(NOW - dt.timedelta(days=8)).date(), members=1
    )
    segment_refresh(segment=new_customers, now=NOW)
    page = admin_client.get(url("segment"))
    assert page.status_code == 200
    row = next(r for r in page.context["cl"].result_list if r.slug == "new_customer")
    assert (row.member_count, row.members_then) == (3, 1)
    assert b"+2" in page.content
    assert b"Cart abandoners" in page.content


def test_the_refresh_action_recomputes_the_selected_segments(
    admin_client, new_customers, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):  # the job runs after the commit
        response = admin_client.post(
            url("segment"),
            {"action": "refresh", "_selected_action": [new_customers.pk]},
            follow=True,
        )
    assert response.status_code == 200
    assert b"A refresh of 1 segment was started" in response.content
    new_customers.refresh_from_db()
    assert new_customers.member_count == 3 and new_customers.refreshed_at == NOW
    assert not Segment.objects.exclude(pk=new_customers.pk).filter(refreshed_at=NOW).exists()


def test_a_segment_page_links_to_its_members_and_shows_its_size_by_day(admin_client, new_customers):
    segment_refresh(segment=new_customers, now=NOW)
    page = admin_client.get(url("segment", "change", new_customers.pk))
    assert page.status_code == 200
    assert b"current members" in page.content
    assert NOW.date().isoformat().encode() in page.content or b"June 1, 2026" in page.content

    members = admin_client.get(
        url("segmentmembership"), {"segment__id__exact": new_customers.pk, "current": "yes"}
    )
    assert members.status_code == 200
    emails = {m.profile.email for m in members.context["cl"].result_list}
    assert emails == {"c0@example.com", "c1@example.com", "c2@example.com"}


def test_a_profile_page_lists_its_segments(admin_client, new_customers):
    segment_refresh(segment=new_customers, now=NOW)
    profile = Profile.objects.get(email="c0@example.com")
    page = admin_client.get(url("profile", "change", profile.pk))
    assert page.status_code == 200
    assert b"Segments (current and past)" in page.content
    assert b"New customers" in page.content


def test_lifecycle_segments_can_be_renamed_but_not_added_or_deleted(admin_client, new_customers):
    # What the add page adds is a rule segment: there is no kind to choose.
    assert "kind" not in admin_client.get(url("segment", "add")).context["adminform"].form.fields
    assert admin_client.get(url("segment", "delete", new_customers.pk)).status_code == 403
    response = admin_client.post(
        url("segment", "change", new_customers.pk),
        {"name": "Just joined", "description": "First order this month."},
    )
    assert response.status_code == 302
    new_customers.refresh_from_db()
    assert (new_customers.name, new_customers.slug) == ("Just joined", "new_customer")


# --- rule segments ---------------------------------------------------------------------------

RULE = {"field": "orders.bought_product", "op": "eq", "value": "mug"}


def _rule_form(**overrides):
    data = {"name": "Mug buyers", "slug": "mug_buyers", "description": "", "rule": json.dumps(RULE)}
    return {**data, **overrides}


def test_a_marketer_adds_a_rule_segment_and_its_members_follow(
    admin_client, new_customers, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(url("segment", "add"), _rule_form())
    assert response.status_code == 302
    segment = Segment.objects.get(slug="mug_buyers")
    assert (segment.kind, segment.rule, segment.member_count) == ("rule", RULE, 3)
    page = admin_client.get(url("segment", "change", segment.pk))
    assert b"c0@example.com" in page.content  # the sample of members
    assert b"Preview who matches" in page.content


def test_a_bad_rule_is_a_form_error_naming_the_path(admin_client, new_customers):
    bad = {"all": [RULE, {"field": "orders.bought_product", "op": "like", "value": "mug"}]}
    response = admin_client.post(url("segment", "add"), _rule_form(rule=json.dumps(bad)))
    assert response.status_code == 200
    assert "all[1].op: Unknown operator" in str(response.context["adminform"].form.errors)
    response = admin_client.post(url("segment", "add"), _rule_form(rule="{oops"))
    assert response.status_code == 200
    assert "rule" in response.context["adminform"].form.errors
    assert not Segment.objects.filter(slug="mug_buyers").exists()


def test_preview_shows_count_and_sample_without_saving(admin_client, new_customers):
    response = admin_client.post(url("segment", "add"), {**_rule_form(), "_preview": "1"})
    assert response.status_code == 200
    assert b"3 profiles match this rule now." in response.content
    assert b"c2@example.com" in response.content
    assert b"Preview only: nothing was saved." in response.content
    # A preview is not a mistake: no "Please correct the error below."
    assert b"errornote" not in response.content
    assert not Segment.objects.filter(slug="mug_buyers").exists()


def test_lifecycle_segments_keep_their_definition_and_cannot_be_deleted(
    admin_client, new_customers
):
    page = admin_client.get(url("segment", "change", new_customers.pk))
    assert "rule" not in page.context["adminform"].form.fields
    assert admin_client.post(url("segment", "delete", new_customers.pk)).status_code == 403
    referred = Segment.objects.create(slug="a", name="A", kind="rule", rule=RULE)
    Segment.objects.create(
        slug="b", name="B", kind="rule", rule={"field": "segment", "op": "eq", "value": "a"}
    )
    assert admin_client.post(url("segment", "delete", referred.pk)).status_code == 403


def test_explain_a_profile_on_the_segment_and_on_the_profile_page(admin_client, new_customers):
    segment_refresh(segment=new_customers, now=NOW)
    page = admin_client.get(
        reverse("admin:personalization_segment_explain", args=[new_customers.pk]),
        {"profile": "c1@example.com"},
    )
    assert page.status_code == 200
    assert "days since the first order (needs at most 30)" in page.content.decode()
    assert b"Currently a member" in page.content
    missing = admin_client.get(
        reverse("admin:personalization_segment_explain", args=[new_customers.pk]),
        {"profile": "nobody@example.com"},
    )
    assert b"No profile with that email address or id." in missing.content

    profile = Profile.objects.get(email="c1@example.com")
    page = admin_client.get(url("profile", "change", profile.pk))
    assert "days since the first order (needs at most 30)" in page.content.decode()


def test_the_rule_builder_gets_the_allowlist_and_searches_values(admin_client, new_customers):
    page = admin_client.get(url("segment", "add"))
    html = page.content.decode()
    assert 'class="pzn-rule-builder"' in html
    assert "personalization/admin/rule_builder.js" in html
    schema = json.loads(html.split('id="id_rule-schema" type="application/json">')[1].split("<")[0])
    by_name = {field["name"]: field for field in schema["fields"]}
    assert [op["op"] for op in by_name["orders.bought_category"]["ops"]] == ["eq", "in"]
    assert by_name["orders.bought_category"]["params"] == ["at_least", "within_days"]

    choices = reverse("admin:personalization_segment_choices")
    found = admin_client.get(choices, {"type": "product", "term": "mu"}).json()["results"]
    assert [item["value"] for item in found] == ["mug"]
    segments = admin_client.get(choices, {"type": "segment", "term": "lap"}).json()["results"]
    assert [item["value"] for item in segments] == ["lapsed"]
    assert admin_client.get(choices, {"type": "sql"}).status_code == 400


# --- the pages stay fast with many rows: no query per row, no count of a whole table ----------


def _queries(client, path, data=None, method="get") -> int:
    with CaptureQueriesContext(connection) as captured:
        response = getattr(client, method)(path, data or {})
    assert response.status_code == 200, response.status_code
    return len(captured)


def _members(segment: Segment, count: int, *, start: int = 0, left: bool = False) -> None:
    profiles = Profile.objects.bulk_create(
        Profile(email=f"m{start + n}@example.com", orders_count=1) for n in range(count)
    )
    SegmentMembership.objects.bulk_create(
        SegmentMembership(
            segment=segment,
            profile=profile,
            entered_at=NOW - dt.timedelta(days=2),
            exited_at=NOW - dt.timedelta(days=1) if left else None,
        )
        for profile in profiles
    )
    ConsentRecord.objects.bulk_create(
        ConsentRecord(
            profile=profile,
            purpose="email_marketing",
            status="granted",
            source="api",
            recorded_at=NOW,
            written_at=NOW,
        )
        for profile in profiles
    )


@pytest.fixture
def lapsed(time_machine):
    time_machine.move_to(NOW, tick=False)
    return Segment.objects.get(slug="lapsed")


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"current": "yes"},
        {"current": "no"},
        {"q": "m1@example.com"},
    ],
    ids=["all", "current", "left", "search"],
)
def test_the_member_list_sends_as_many_queries_for_60_members_as_for_2(
    admin_client, lapsed, params
):
    path = url("segmentmembership")
    with_segment = {"segment__id__exact": lapsed.pk, **params}
    _members(lapsed, 2)
    _members(lapsed, 2, start=2, left=True)
    few = _queries(admin_client, path, with_segment), _queries(admin_client, path, params)
    _members(lapsed, 60, start=10)
    _members(lapsed, 60, start=100, left=True)
    many = _queries(admin_client, path, with_segment), _queries(admin_client, path, params)
    assert many == few


def test_the_profile_list_sends_as_many_queries_for_60_profiles_as_for_2(admin_client, lapsed):
    path = url("profile")
    filters = [{}, {"c_email_marketing": "granted"}, {"has_orders": "yes"}, {"q": "m1"}]
    _members(lapsed, 2)
    few = [_queries(admin_client, path, params) for params in filters]
    _members(lapsed, 60, start=10)
    assert [_queries(admin_client, path, params) for params in filters] == few


def test_segment_pages_send_as_many_queries_for_60_members_as_for_2(admin_client, lapsed):
    pages = [
        (url("segment"), {}, "get"),
        (url("segment", "change", lapsed.pk), {}, "get"),
        (
            url("segment", "add"),
            {**_rule_form(rule=json.dumps(LAPSED_RULE)), "_preview": "1"},
            "post",
        ),
        (
            reverse("admin:personalization_segment_explain", args=[lapsed.pk]),
            {"profile": "m1@example.com"},
            "get",
        ),
    ]
    _members(lapsed, 2)
    few = [_queries(admin_client, path, data, method) for path, data, method in pages]
    _members(lapsed, 60, start=10)
    assert [_queries(admin_client, path, data, method) for path, data, method in pages] == few


LAPSED_RULE = {"field": "segment", "op": "eq", "value": "lapsed"}


def test_a_profile_page_sends_as_many_queries_for_many_stays_and_choices_as_for_one(
    admin_client, lapsed
):
    _members(lapsed, 1)
    profile = Profile.objects.get(email="m0@example.com")
    topics = Topic.objects.bulk_create(Topic(slug=f"t{n}", name=f"Topic {n}") for n in range(6))
    TopicPreference.objects.create(
        profile=profile, topic=topics[0], subscribed=True, updated_at=NOW
    )
    path = url("profile", "change", profile.pk)
    few = _queries(admin_client, path)
    for segment in Segment.objects.exclude(kind="lifecycle"):
        segment.delete()
    SegmentMembership.objects.bulk_create(  # past stays: the history grows, the page does not
        SegmentMembership(
            segment=segment,
            profile=profile,
            entered_at=NOW - dt.timedelta(days=10 + n),
            exited_at=NOW - dt.timedelta(days=5 + n),
        )
        for n, segment in enumerate(Segment.objects.exclude(pk=lapsed.pk))
    )
    TopicPreference.objects.bulk_create(
        TopicPreference(profile=profile, topic=topic, subscribed=False, updated_at=NOW)
        for topic in topics[1:]
    )
    page = admin_client.get(path)
    assert "days since the last order" in page.content.decode()  # lapsed, explained
    assert _queries(admin_client, path) == few


def test_a_big_list_says_its_count_is_capped(admin_client, lapsed, monkeypatch):
    monkeypatch.setattr(LargeTablePaginator, "exact_up_to", 5)
    _members(lapsed, 8)
    page = admin_client.get(url("segmentmembership"), {"segment__id__exact": lapsed.pk})
    assert page.context["cl"].paginator.count_is == "more_than"
    assert "more than 5" in page.content.decode()
    monkeypatch.setattr(LargeTablePaginator, "exact_up_to", 50)
    page = admin_client.get(url("segmentmembership"), {"segment__id__exact": lapsed.pk})
    assert page.context["cl"].result_count == 8 and "more than" not in page.content.decode()
    # Unfiltered on PostgreSQL: its estimate once the table was analysed; SQLite counts.
    page = admin_client.get(url("profile"))
    assert page.context["cl"].paginator.count_is in ("exact", "estimate")
