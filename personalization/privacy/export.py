"""Everything the app holds about one person, as JSON-ready data (GDPR Art. 15 and 20).

:func:`profile_export` is the one export: the admin's "Download their data" action, the
preference centre's "Download my data" and any API call it. What it covers is declared in
:data:`EXPORT_PARTS`, one :class:`ExportPart` per model that holds personal data, and
:data:`NO_PERSONAL_DATA` lists, with the reason, the app's models that hold none. A test walks
the app's models and fails for a model that links to a profile or holds a personal field but is
in neither, and for a field of an exported model that the export leaves out.

A person has hundreds of rows, not millions: each part is one query (related products, topics
and segments joined in), so the export reads as many queries for a long history as for none.
"""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.db import models
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from ..models import (
    Campaign,
    Cart,
    CartLine,
    ChannelPreference,
    ConsentRecord,
    ConsentWording,
    Event,
    Flow,
    FlowEntry,
    FlowStep,
    Job,
    LearnedInterval,
    Message,
    MessageEvent,
    Order,
    OrderLine,
    PreferenceChange,
    Product,
    ProductCategory,
    ProductNeighbour,
    ProductPopularity,
    Profile,
    ProfileAlias,
    RecommendationModel,
    Segment,
    SegmentDailyCount,
    SegmentMembership,
    Suppression,
    Topic,
    TopicPreference,
    Trait,
    TraitRemoval,
)
from ..validation import saved_instance_check

#: Changes when the shape of the export changes in a way a reader of old files must know.
EXPORT_FORMAT_VERSION = 2  # 2: traits are a list of their own, with source and confidence


@dataclass(frozen=True)
class ExportPart:
    """How one model's rows about a person appear in the export.

    ``fields`` are ``QuerySet.values()`` lookups; one that follows a relation
    (``"product__title"``) appears as ``product_title``. ``person`` is the lookup from the
    model to the profile's primary key. A part ``within`` another (an order's lines) is nested
    in each row of that part under ``key``, through the named foreign key; the others are
    top-level keys of the export.
    """

    key: str
    model: type[models.Model]
    person: str
    fields: tuple[str, ...]
    order_by: tuple[str, ...] = ("pk",)
    within: str | None = None
    # Values computed in the same query, exported under their names.
    annotations: dict[str, Any] = field(default_factory=dict)

    def covered_fields(self) -> set[str]:
        """The model's fields this part accounts for: exported, or the link to the person or
        to the part it is nested in."""
        names = {lookup.split("__", 1)[0] for lookup in self.fields}
        names.add(self.person.split("__", 1)[0])
        if self.within:
            names.add(self.within)
        return names


EXPORT_PARTS: tuple[ExportPart, ...] = (
    ExportPart(
        key="profile",
        model=Profile,
        person="pk",
        fields=(
            "id",
            # identity
            "email",
            "user",
            "first_name",
            "last_name",
            # attributes
            "locale",
            "timezone",
            "country",
            "birthday",
            # order statistics
            "orders_count",
            "total_spent",
            "average_order_value",
            "first_order_at",
            "last_order_at",
            # preferences
            "frequency",
            "paused_until",
            "greeting",
            "link_version",  # how many times their email links were revoked, plus one
            "created_at",
            "updated_at",
        ),
    ),
    ExportPart(
        key="traits",
        model=Trait,
        person="profile",
        fields=("id", "key", "value", "source", "confidence", "recorded_at", "updated_at"),
        order_by=("key", "pk"),
    ),
    ExportPart(
        key="removed_traits",
        model=TraitRemoval,
        person="profile",
        fields=("id", "key", "by", "removed_at"),
        order_by=("key", "pk"),
    ),
    ExportPart(
        key="aliases",
        model=ProfileAlias,
        person="profile",
        fields=("id", "kind", "value", "created_at"),
        order_by=("created_at", "pk"),
    ),
    ExportPart(
        key="consent_records",
        model=ConsentRecord,
        person="profile",
        fields=(
            "id",
            "purpose",
            "status",
            "source",
            "wording_version",
            "recorded_at",
            "written_at",
            "ordered_at",
            "double_opt_in",
            "confirmed_at",
            "confirms",
            "email",
            "ip_address",
        ),
        # The words the person was shown (None for a version not published as a wording).
        annotations={
            "wording_text": Subquery(
                ConsentWording.objects.filter(version=OuterRef("wording_version")).values("text")[
                    :1
                ]
            )
        },
        order_by=("ordered_at", "pk"),  # the ledger in its own order, oldest first
    ),
    ExportPart(
        key="topic_preferences",
        model=TopicPreference,
        person="profile",
        fields=("id", "topic__slug", "topic__name", "subscribed", "updated_at"),
        order_by=("topic__position", "topic__name", "pk"),
    ),
    ExportPart(
        key="channel_preferences",
        model=ChannelPreference,
        person="profile",
        fields=("id", "channel", "enabled", "updated_at"),
        order_by=("channel", "pk"),
    ),
    ExportPart(
        key="preference_changes",
        model=PreferenceChange,
        person="profile",
        fields=(
            "id",
            "field",
            "subject",
            "old_value",
            "new_value",
            "source",
            "wording_version",
            "changed_at",
        ),
        order_by=("changed_at", "pk"),
    ),
    ExportPart(
        key="orders",
        model=Order,
        person="profile",
        fields=(
            "id",
            "external_id",
            "placed_at",
            "total",
            "currency",
            "shop_total",
            "status",
            "status_changed_at",
            "cart__external_id",
            "source",
            "created_at",
        ),
        order_by=("placed_at", "pk"),
    ),
    ExportPart(
        key="lines",
        model=OrderLine,
        person="order__profile",
        within="order",
        fields=("id", "product__external_id", "product__title", "quantity", "unit_price"),
    ),
    ExportPart(
        key="carts",
        model=Cart,
        person="profile",
        fields=(
            "id",
            "external_id",
            "status",
            "currency",
            "total",
            "shop_total",
            "source_updated_at",
            "created_at",
        ),
        order_by=("created_at", "pk"),
    ),
    ExportPart(
        key="lines",
        model=CartLine,
        person="cart__profile",
        within="cart",
        fields=("id", "product__external_id", "product__title", "quantity", "unit_price"),
    ),
    ExportPart(
        key="events",
        model=Event,
        person="profile",
        fields=(
            "id",
            "name",
            "occurred_at",
            "product__external_id",
            "product__title",
            "is_sensitive",
            "properties",
        ),
        order_by=("occurred_at", "pk"),
    ),
    ExportPart(
        key="segment_memberships",
        model=SegmentMembership,
        person="profile",
        fields=("id", "segment__slug", "segment__name", "entered_at", "exited_at"),
        order_by=("entered_at", "pk"),
    ),
    # Their ways through flows: what started each, and how it ended.
    ExportPart(
        key="flow_entries",
        model=FlowEntry,
        person="profile",
        fields=(
            "id",
            "flow__name",
            "trigger_key",
            "triggered_at",
            "cart",
            "order",
            "product__title",
            "category",
            "entered_at",
            "state",
            "next_position",
            "waiting_since",
            "exit_reason",
            "ended_at",
        ),
        order_by=("entered_at", "pk"),
    ),
    # Every message the app meant to send them, and what became of it (the ledger).
    ExportPart(
        key="messages",
        model=Message,
        person="profile",
        fields=(
            "id",
            "dedupe_key",
            "source",
            "campaign__name",
            "flow_step__flow__name",
            "flow_step__position",
            "flow_entry",
            "kind",
            "topic__name",
            "priority",
            "context",
            "state",
            "reason",
            "not_before",
            "expires_at",
            "variant",
            "group",
            "attempts",
            "claim_token",
            "claimed_until",
            "decided_at",
            "to_email",
            "subject",
            "sent_at",
            "esp_message_id",
            "last_error",
            "delivered_at",
            "opened_at",
            "clicked_at",
            "bounced_at",
            "complained_at",
            "unsubscribed_at",
            "created_at",
            "updated_at",
        ),
        order_by=("created_at", "pk"),
    ),
    ExportPart(
        key="tracking_events",
        model=MessageEvent,
        person="message__profile",
        within="message",
        fields=(
            "id",
            "event_id",
            "esp_message_id",
            "event_type",
            "reject_reason",
            "occurred_at",
            "received_at",
        ),
        order_by=("occurred_at", "pk"),
    ),
)

#: The app's models that hold no personal data, and why. A model added to the app must be
#: named here or in EXPORT_PARTS (the tests check it).
NO_PERSONAL_DATA: dict[type[models.Model], str] = {
    # The shop's catalogue mirror: products, not people.
    Product: "the shop's products",
    ProductCategory: "levels of the products' categories",
    # What marketers define; a person's own choices are TopicPreference.
    Topic: "subjects a marketer defines",
    # A segment's definition and its daily size; who is in it is SegmentMembership.
    Segment: "a marketer's definition of a group",
    SegmentDailyCount: "a segment's size on a day, a number",
    # Work to do: arguments name profiles, consent records or segments by id only, and a
    # finished job is purged after JOB_KEEP_DONE_DAYS.
    Job: "background work, referring to rows by id only",
    # Salted hashes of addresses, linked to no profile: nobody can read an address out of one.
    Suppression: "salted hashes of suppressed addresses, linked to no one",
    # The published texts of consent boxes, the same for everybody; a person's consent is
    # ConsentRecord, which names the version they were shown.
    ConsentWording: "the published texts of consent boxes, the same for everybody",
    # The recommendation model: counts over all customers' orders and views (a pair needs
    # RECOMMENDATION_MIN_SUPPORT of them), linked to no one.
    RecommendationModel: "a build of the recommendation model, numbers and settings",
    ProductNeighbour: "pairs of products with counts over all customers, linked to no one",
    ProductPopularity: "orders per product over all customers, linked to no one",
    LearnedInterval: "median gaps between repeat purchases over all customers, linked to no one",
    # A campaign's copy and audience definition; who got it is Message.
    Campaign: "a marketer's campaign: its copy and which segments it goes to",
    # A flow's settings and copy; who went through it is FlowEntry, what they got is Message.
    Flow: "a marketer's flow: its trigger and settings",
    FlowStep: "a flow step's timing and copy",
}


def profile_export(*, profile: Profile) -> dict[str, Any]:
    """Everything the app holds about ``profile``, as a dict ``json.dumps`` can write.

    Top-level keys: ``format_version``, ``exported_at``, ``profile`` (its fields: identity,
    attributes, order statistics, preferences) and one list per part of :data:`EXPORT_PARTS`
    (``traits`` with their source and confidence, ``removed_traits``, ``aliases``,
    ``consent_records``, ``topic_preferences``, ``channel_preferences``,
    ``orders`` and ``carts`` with their ``lines``, ``events``, ``segment_memberships``). Each
    consent record also has the ``wording_text`` the person was shown.
    Times are ISO 8601 strings, amounts decimal strings, choices their stored values.
    ``profile`` must be a saved Profile (a TypeError otherwise: a programming error).
    """
    saved_instance_check(profile, Profile, field="profile")
    rows = {part.model: _part_rows(part, profile=profile) for part in EXPORT_PARTS}
    export: dict[str, Any] = {
        "format_version": EXPORT_FORMAT_VERSION,
        "exported_at": timezone.now().isoformat(),
    }
    for part in EXPORT_PARTS:
        if part.within is None:
            export[part.key] = rows[part.model]
            continue
        parent = part.model._meta.get_field(part.within).related_model
        nested: dict[Any, list[dict[str, Any]]] = defaultdict(list)
        for row in rows[part.model]:
            nested[row.pop(part.within)].append(row)
        for parent_row in rows[parent]:
            parent_row[part.key] = nested.get(parent_row["id"], [])
    profile_rows = export["profile"]
    export["profile"] = profile_rows[0] if profile_rows else None
    return export


def _part_rows(part: ExportPart, *, profile: Profile) -> list[dict[str, Any]]:
    lookups = (*part.fields, part.within) if part.within else part.fields
    queryset = (
        part.model._default_manager.filter(**{part.person: profile.pk})
        .annotate(**part.annotations)
        .order_by(*part.order_by)
        .values(*lookups, *part.annotations)
    )
    return [
        {lookup.replace("__", "_"): _plain(value) for lookup, value in row.items()}
        for row in queryset
    ]


def _plain(value: Any) -> Any:
    """A value as JSON can hold it."""
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    return value
