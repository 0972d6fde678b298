"""What the email service tells us afterwards: Anymail tracking events onto the ledger.

Connected to ``anymail.signals.tracking`` (``personalization.receivers``), so every ESP
Anymail supports reports the same way. Each event is stored once, by its id
(:class:`~personalization.models.MessageEvent`): a replayed webhook changes nothing. The
message keeps the *first* time of each kind of event, so events arriving out of order leave
the same result. Hard bounces, complaints and unsubscribes at the ESP put the address on the
suppression list (and a complaint or an unsubscribe also withdraws the marketing consent in the
ledger, with the email service as its source), so the policy skips it from then on.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from ..models import ConsentSource, Message, MessageEvent, SuppressionReason, SuppressionSource
from ..preferences.services import unsubscribe_all
from ..privacy.suppression import suppression_add

logger = logging.getLogger(__name__)

# Anymail's normalised event types → the message's field holding the first time of it.
EVENT_FIELDS = {
    "delivered": "delivered_at",
    "opened": "opened_at",
    "clicked": "clicked_at",
    "bounced": "bounced_at",
    "complained": "complained_at",
    "unsubscribed": "unsubscribed_at",
}
# Events that mean "do not mail this address again", and why.
SUPPRESSING = {
    "bounced": SuppressionReason.HARD_BOUNCE,
    "complained": SuppressionReason.COMPLAINT,
    "unsubscribed": SuppressionReason.UNSUBSCRIBED,
}


def _event_key(event, esp_name: str) -> str:
    if event.event_id:
        return f"{esp_name}:{event.event_id}"[:255]
    # Some ESPs send no id: the event is then known by what it says.
    stamp = event.timestamp.isoformat() if event.timestamp else ""
    return f"{esp_name}:{event.message_id}:{event.event_type}:{event.recipient}:{stamp}"[:255]


def _message_for(event) -> Message | None:
    metadata = event.metadata or {}
    condition = Q(esp_message_id=str(event.message_id)) if event.message_id else Q(pk__in=[])
    if str(metadata.get("pzn_message", "")).isdigit():
        condition |= Q(pk=int(metadata["pzn_message"]))
    return Message.objects.filter(condition).select_related("profile").order_by("pk").first()


def tracking_event_record(*, event, esp_name: str = "esp") -> bool:
    """Record one Anymail ``AnymailTrackingEvent``; False when it was seen before."""
    occurred = event.timestamp or timezone.now()
    message = _message_for(event)
    try:
        with transaction.atomic():
            MessageEvent.objects.create(
                event_id=_event_key(event, esp_name),
                message=message,
                esp_message_id=str(event.message_id or "")[:255],
                event_type=str(event.event_type)[:20],
                reject_reason=str(event.reject_reason or "")[:40],
                occurred_at=occurred,
            )
    except IntegrityError:
        return False  # a replay
    field = EVENT_FIELDS.get(event.event_type)
    if message is not None and field:
        Message.objects.filter(pk=message.pk).filter(
            Q(**{f"{field}__isnull": True}) | Q(**{f"{field}__gt": occurred})
        ).update(**{field: occurred})
    _suppress(event, message)
    return True


def _suppress(event, message: Message | None) -> None:
    reason = SUPPRESSING.get(event.event_type)
    if event.event_type == "rejected" and event.reject_reason == "bounced":
        reason = SuppressionReason.HARD_BOUNCE
    if reason is None:
        return
    address = event.recipient or (message.to_email if message else "")
    if address:
        suppression_add(emails=[address], reason=reason, source=SuppressionSource.EMAIL_SERVICE)
    if message is not None and reason != SuppressionReason.HARD_BOUNCE:
        unsubscribe_all(
            profile=message.profile, source=ConsentSource.EMAIL_SERVICE, now=_now(event)
        )


def _now(event) -> dt.datetime:
    return min(event.timestamp or timezone.now(), timezone.now())
