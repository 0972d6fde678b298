"""Messaging: campaigns, and the ledger of every message the app meant to send.

A ``Message`` row is written for every intended message, whatever becomes of it: sent, deferred,
skipped with a reason, failed, or of unknown outcome after a crash. Campaigns and flow
steps only *plan* rows; the dispatcher claims them, asks the guardrail policy, renders
and sends. The ledger's unique ``dedupe_key`` is what makes "each customer gets each message
once" hold with any number of planners, workers and Beats.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .flows import FlowEntry, FlowStep
from .profiles import Profile, Topic
from .segments import Segment


class SendMode(models.TextChoices):
    NOW = "now", _("now")
    AT = "at", _("at a set time")
    LOCAL = "local", _("at a set time in each recipient's own time zone")


class CampaignStatus(models.TextChoices):
    DRAFT = "draft", _("draft")
    SCHEDULED = "scheduled", _("scheduled")
    SENDING = "sending", _("sending")
    SENT = "sent", _("sent")
    CANCELLED = "cancelled", _("cancelled")


class CampaignQuerySet(models.QuerySet):
    def due(self, now):
        """Scheduled campaigns whose planning time has come."""
        return self.filter(status=CampaignStatus.SCHEDULED, plan_at__lte=now)


class Campaign(models.Model):
    """A one-off marketing email to the members of some segments."""

    name = models.CharField(
        _("name"),
        max_length=200,
        help_text=_("For you and your colleagues; never shown to customers."),
    )
    topic = models.ForeignKey(
        Topic,
        on_delete=models.PROTECT,
        related_name="campaigns",
        verbose_name=_("topic"),
        help_text=_(
            "What the campaign is about. Customers who opted out of this topic in the "
            "preference centre do not get it."
        ),
    )
    include_segments = models.ManyToManyField(
        Segment,
        related_name="campaigns_including",
        verbose_name=_("send to members of"),
        help_text=_("Customers in any of these segments (when it is planned) are the audience."),
    )
    exclude_segments = models.ManyToManyField(
        Segment,
        blank=True,
        related_name="campaigns_excluding",
        verbose_name=_("but not to members of"),
        help_text=_("Customers in any of these segments are left out."),
    )
    subject = models.CharField(
        _("subject"),
        max_length=200,
        help_text=_("May use the same template language as the body, e.g. {{ greeting }}."),
    )
    preheader = models.CharField(
        _("preheader"),
        max_length=200,
        blank=True,
        help_text=_("The short line mail apps show after the subject."),
    )
    body = models.TextField(
        _("body"),
        help_text=_(
            "Django template language over plain data: {{ greeting }}, {{ first_name }}, "
            "{{ shop_name }}, {% recommendations 4 %}, {% cart_lines %}, "
            "{{ preference_centre_url }} and {{ unsubscribe_url }}."
        ),
    )
    generic_subject = models.CharField(
        _("generic subject"),
        max_length=200,
        blank=True,
        help_text=_(
            "For recipients without the personalisation consent. Empty: the subject above, "
            "rendered without any of their data."
        ),
    )
    generic_body = models.TextField(
        _("generic body"),
        blank=True,
        help_text=_(
            "For recipients without the personalisation consent. Empty: the body above; its "
            "recommendation block then shows bestsellers."
        ),
    )
    send_mode = models.CharField(
        _("send"), max_length=8, choices=SendMode.choices, default=SendMode.NOW
    )
    send_at = models.DateTimeField(
        _("send at"),
        null=True,
        blank=True,
        help_text=_(
            "For 'at a set time'. For 'in each recipient's own time zone', the wall-clock "
            "time read in the shop's time zone is used in each recipient's."
        ),
    )
    status = models.CharField(
        _("status"),
        max_length=10,
        choices=CampaignStatus.choices,
        default=CampaignStatus.DRAFT,
        editable=False,
    )
    plan_at = models.DateTimeField(
        _("plan at"),
        null=True,
        blank=True,
        editable=False,
        help_text=_("When the audience is taken and the messages are planned."),
    )
    priority = models.PositiveSmallIntegerField(
        _("priority"),
        default=100,
        help_text=_(
            "When several messages compete for a customer's last free slot, the lower number "
            "goes first (flows default to 50, campaigns to 100)."
        ),
    )
    utm_campaign = models.SlugField(
        _("utm_campaign"),
        max_length=100,
        blank=True,
        help_text=_("Added to the shop's links when UTM parameters are configured."),
    )
    lint_acknowledged = models.BooleanField(
        _("warnings acknowledged"),
        default=False,
        help_text=_("The copy's warnings were read and the campaign may be scheduled anyway."),
    )
    audience_count = models.PositiveIntegerField(
        _("planned messages"), null=True, blank=True, editable=False
    )
    scheduled_at = models.DateTimeField(_("scheduled at"), null=True, blank=True, editable=False)
    planned_at = models.DateTimeField(_("planned at"), null=True, blank=True, editable=False)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True, editable=False)
    cancelled_at = models.DateTimeField(_("cancelled at"), null=True, blank=True, editable=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    objects = CampaignQuerySet.as_manager()

    class Meta:
        verbose_name = _("campaign")
        verbose_name_plural = _("campaigns")
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=CampaignStatus.values), name="pzn_campaign_status"
            ),
            models.CheckConstraint(
                condition=Q(send_mode__in=SendMode.values), name="pzn_campaign_send_mode"
            ),
            models.CheckConstraint(
                condition=Q(send_mode=SendMode.NOW) | Q(send_at__isnull=False),
                name="pzn_campaign_send_at_set",
            ),
            models.CheckConstraint(
                condition=Q(status=CampaignStatus.DRAFT) | Q(plan_at__isnull=False),
                name="pzn_campaign_plan_at_set",
            ),
        ]
        indexes = [
            models.Index(
                fields=["plan_at"],
                condition=Q(status="scheduled"),
                name="pzn_campaign_due",
            )
        ]

    def __str__(self) -> str:
        return self.name


class MessageKind(models.TextChoices):
    MARKETING = "marketing", _("marketing")
    TRANSACTIONAL = "transactional", _("transactional")


class MessageSource(models.TextChoices):
    CAMPAIGN = "campaign", _("campaign")
    FLOW = "flow", _("flow")
    TEST = "test", _("test send")


class MessageState(models.TextChoices):
    PLANNED = "planned", _("planned")
    DEFERRED = "deferred", _("deferred")
    CLAIMED = "claimed", _("claimed by a worker")
    READY = "ready", _("decided: being rendered")
    SENDING = "sending", _("handed to the email service")
    SENT = "sent", _("sent")
    SKIPPED = "skipped", _("skipped")
    FAILED = "failed", _("failed")
    UNKNOWN = "unknown", _("outcome unknown")
    CANCELLED = "cancelled", _("cancelled")


# States a message can still leave for "sent".
OPEN_STATES = (MessageState.PLANNED, MessageState.DEFERRED, MessageState.CLAIMED)
# States that took a slot of the customer's frequency cap (unknown: it may have gone out).
CAP_STATES = (MessageState.READY, MessageState.SENDING, MessageState.SENT, MessageState.UNKNOWN)


class DecisionReason(models.TextChoices):
    """Why a message was deferred, skipped or failed (stored on it, shown in the admin and in
    the preference centre's "why you hear from us")."""

    NO_EMAIL = "no_email", _("no email address")
    UNSUBSCRIBED = "suppressed_unsubscribed", _("unsubscribed")
    HARD_BOUNCE = "suppressed_hard_bounce", _("the address bounced")
    COMPLAINT = "suppressed_complaint", _("marked an email as spam")
    ERASED = "suppressed_erased", _("asked to be forgotten")
    NO_CONSENT = "no_consent", _("no consent to marketing email")
    CONSENT_PENDING = "consent_pending", _("consent not yet confirmed")
    TOPIC_OFF = "topic_off", _("not interested in this topic")
    PAUSED = "paused", _("taking a break from email")
    FREQUENCY_CAP = "frequency_cap", _("enough email this week (the shop's pace)")
    OWN_FREQUENCY = "own_frequency", _("enough email for the pace the customer chose")
    QUIET_HOURS = "quiet_hours", _("night time where the customer lives")
    CANCELLED = "cancelled", _("the campaign was cancelled")
    # A flow's own rules, checked before the policy (the entry says why it ended).
    FLOW_EXITED = "flow_exited", _("the reason for the flow was gone")
    FLOW_LIMIT = "flow_limit", _("enough messages from this flow for now")
    FLOW_PREVIOUS_STEP = "flow_previous_step", _("waiting for the flow's previous message")
    FLOW_CONDITION = "flow_condition", _("the step's condition was not met")
    # Not the policy's: what happened when sending.
    RENDER_ERROR = "render_error", _("the email could not be put together")
    REFUSED = "refused", _("the email service refused the address")
    ESP_UNAVAILABLE = "esp_unavailable", _("the email service was unavailable; trying again")
    WORKER_LOST = "worker_lost", _("the sending worker stopped; it may or may not have gone out")


class Variant(models.TextChoices):
    TAILORED = "tailored", _("tailored")
    GENERIC = "generic", _("generic (no personalisation consent)")


class MessageQuerySet(models.QuerySet):
    def open(self):
        return self.filter(state__in=OPEN_STATES)

    def marketing(self):
        return self.filter(kind=MessageKind.MARKETING)


class Message(models.Model):
    """One intended message to one customer, and everything that became of it."""

    dedupe_key = models.CharField(
        _("dedupe key"),
        max_length=200,
        unique=True,
        help_text=_(
            "What makes the message one of a kind: campaign and customer (a flow: step, "
            "customer and trigger). Planning the same key twice writes one row."
        ),
    )
    profile = models.ForeignKey(
        Profile, on_delete=models.CASCADE, related_name="messages", verbose_name=_("customer")
    )
    source = models.CharField(_("source"), max_length=10, choices=MessageSource.choices)
    campaign = models.ForeignKey(
        Campaign,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="messages",
        verbose_name=_("campaign"),
    )
    flow_step = models.ForeignKey(
        FlowStep,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="messages",
        verbose_name=_("flow step"),
    )
    flow_entry = models.ForeignKey(
        FlowEntry,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="messages",
        verbose_name=_("flow entry"),
    )
    kind = models.CharField(
        _("kind"), max_length=14, choices=MessageKind.choices, default=MessageKind.MARKETING
    )
    topic = models.ForeignKey(
        Topic,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("topic"),
    )
    priority = models.PositiveSmallIntegerField(_("priority"), default=100)
    context = models.JSONField(
        _("context"),
        default=dict,
        blank=True,
        help_text=_("Plain data the source planned the message with (a flow's trigger)."),
    )
    state = models.CharField(
        _("state"), max_length=10, choices=MessageState.choices, default=MessageState.PLANNED
    )
    reason = models.CharField(
        _("reason"),
        max_length=40,
        blank=True,
        choices=DecisionReason.choices,
        help_text=_("Why the policy deferred or skipped it, or why it failed."),
    )
    not_before = models.DateTimeField(
        _("not before"), help_text=_("The message is not sent before this time.")
    )
    expires_at = models.DateTimeField(
        _("expires at"),
        null=True,
        blank=True,
        help_text=_(
            "A message deferred past this time is skipped instead: it would come too late."
        ),
    )
    variant = models.CharField(_("variant"), max_length=10, choices=Variant.choices, blank=True)
    group = models.CharField(
        _("group"),
        max_length=20,
        blank=True,
        help_text=_("Holdout or test group, for measuring what the message changed."),
    )
    attempts = models.PositiveSmallIntegerField(_("send attempts"), default=0)
    claim_token = models.CharField(
        _("claimed by"),
        max_length=32,
        blank=True,
        editable=False,
        help_text=_("The dispatcher holding the message; only it may move the message on."),
    )
    claimed_until = models.DateTimeField(
        _("claimed until"),
        null=True,
        blank=True,
        help_text=_("A worker's lease: past it, Beat's sweep hands the message to another."),
    )
    decided_at = models.DateTimeField(
        _("decided at"),
        null=True,
        blank=True,
        help_text=_("When the policy last decided; for a sent message, when it took its slot."),
    )
    to_email = models.EmailField(_("sent to"), blank=True)
    subject = models.CharField(_("subject"), max_length=255, blank=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    esp_message_id = models.CharField(_("ESP message id"), max_length=255, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    delivered_at = models.DateTimeField(_("delivered"), null=True, blank=True)
    opened_at = models.DateTimeField(_("opened"), null=True, blank=True)
    clicked_at = models.DateTimeField(_("clicked"), null=True, blank=True)
    bounced_at = models.DateTimeField(_("bounced"), null=True, blank=True)
    complained_at = models.DateTimeField(_("complained"), null=True, blank=True)
    unsubscribed_at = models.DateTimeField(_("unsubscribed"), null=True, blank=True)
    created_at = models.DateTimeField(_("planned at"), default=timezone.now, editable=False)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    objects = MessageQuerySet.as_manager()

    class Meta:
        verbose_name = _("message")
        verbose_name_plural = _("messages")
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(state__in=MessageState.values), name="pzn_message_state"
            ),
            models.CheckConstraint(
                condition=Q(kind__in=MessageKind.values), name="pzn_message_kind"
            ),
            models.CheckConstraint(
                condition=Q(source__in=MessageSource.values), name="pzn_message_source"
            ),
            models.CheckConstraint(
                condition=~Q(source=MessageSource.CAMPAIGN) | Q(campaign__isnull=False),
                name="pzn_message_campaign_set",
            ),
            models.CheckConstraint(
                condition=~Q(source=MessageSource.FLOW) | Q(flow_step__isnull=False),
                name="pzn_message_flow_step_set",
            ),
        ]
        indexes = [
            # The dispatcher's claim: open messages whose time has come.
            models.Index(
                fields=["not_before", "priority"],
                condition=Q(state__in=["planned", "deferred"]),
                name="pzn_message_ready",
            ),
            # The frequency cap and "why you hear from us": one customer's recent messages.
            models.Index(fields=["profile", "sent_at"], name="pzn_message_profile_sent"),
            models.Index(fields=["campaign", "state"], name="pzn_message_campaign_state"),
            models.Index(
                fields=["esp_message_id"],
                condition=~Q(esp_message_id=""),
                name="pzn_message_esp_id",
            ),
            models.Index(
                fields=["claimed_until"],
                condition=Q(state__in=["claimed", "ready", "sending"]),
                name="pzn_message_leased",
            ),
        ]

    def __str__(self) -> str:
        return self.dedupe_key


class MessageEvent(models.Model):
    """One tracking event from the ESP, kept once (by its id) so replays change nothing."""

    event_id = models.CharField(_("event id"), max_length=255, unique=True)
    message = models.ForeignKey(
        Message,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="events",
        verbose_name=_("message"),
    )
    esp_message_id = models.CharField(_("ESP message id"), max_length=255, blank=True)
    event_type = models.CharField(_("event"), max_length=20)
    reject_reason = models.CharField(_("reject reason"), max_length=40, blank=True)
    occurred_at = models.DateTimeField(_("occurred at"))
    received_at = models.DateTimeField(_("received at"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("tracking event")
        verbose_name_plural = _("tracking events")
        ordering = ["-occurred_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.event_type} {self.esp_message_id}"
