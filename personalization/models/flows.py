"""Flows: automated journeys (welcome, abandoned cart, win-back, …) that plan messages into the
same ledger as campaigns, step by step, and go through the same policy and dispatch.

A ``Flow`` has a trigger (its ``kind``: entering a segment, an event, a date), ``FlowStep``\\ s
with delays, and exit conditions checked before every step and again when a step's message is
about to be sent. Each customer's way through a flow is a ``FlowEntry``: one per trigger (this
cart, this order, this stay in ``lapsed``), so a trigger never starts the same journey twice.
"""

from __future__ import annotations

import datetime as dt

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from .catalogue import Product
from .commerce import Cart, Order
from .profiles import Profile, Topic


class FlowKind(models.TextChoices):
    """What starts a flow. Each kind has its trigger and its exits in ``personalization.flows``."""

    WELCOME = "welcome", _("welcome: a new subscriber (entering “lead”)")
    ABANDONED_CART = "abandoned_cart", _("abandoned cart")
    BROWSE_ABANDONMENT = "browse_abandonment", _("browse abandonment")
    POST_PURCHASE = "post_purchase", _("post-purchase: a first order")
    REPLENISHMENT = "replenishment", _("replenishment: a repeat purchase falls due")
    WIN_BACK = "win_back", _("win-back: entering “lapsed”")
    LOYAL = "loyal", _("loyal: entering “loyal”")
    BIRTHDAY = "birthday", _("birthday")


class Flow(models.Model):
    """One automated journey, on by default, editable by marketers."""

    kind = models.CharField(
        _("trigger"), max_length=20, choices=FlowKind.choices, unique=True, editable=False
    )
    name = models.CharField(_("name"), max_length=200)
    enabled = models.BooleanField(
        _("on"),
        default=True,
        help_text=_(
            "Off: nobody new enters, and nothing more is planned for those already in it "
            "(messages already planned are skipped when they come up)."
        ),
    )
    topic = models.ForeignKey(
        Topic,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="flows",
        verbose_name=_("topic"),
        help_text=_(
            "Customers who opted out of this topic in the preference centre do not get the "
            "flow's messages. Empty: the marketing consent alone decides."
        ),
    )
    priority = models.PositiveSmallIntegerField(
        _("priority"),
        default=50,
        help_text=_(
            "The lower number goes first when messages compete for a customer's last free "
            "slot (campaigns default to 100)."
        ),
    )
    yields = models.BooleanField(
        _("yields to flows that go first"),
        default=False,
        help_text=_(
            "A customer who later enters a flow with a lower priority number leaves this one "
            "(browse abandonment gives way to the abandoned cart, say)."
        ),
    )
    limit_messages = models.PositiveSmallIntegerField(
        _("at most"),
        default=2,
        help_text=_("Messages of this flow a customer gets within the window below."),
    )
    limit_days = models.PositiveSmallIntegerField(
        _("window in days"),
        default=7,
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("flow")
        verbose_name_plural = _("flows")
        ordering = ["priority", "pk"]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=FlowKind.values), name="pzn_flow_kind"),
            models.CheckConstraint(condition=Q(limit_messages__gte=1), name="pzn_flow_limit"),
        ]

    def __str__(self) -> str:
        return self.name


class StepCondition(models.TextChoices):
    """When a later step goes out at all, judged when it is due (after the previous step)."""

    ALWAYS = "always", _("always")
    PREVIOUS_NOT_CLICKED = "previous_not_clicked", _("only if the previous email was not clicked")
    PREVIOUS_NOT_OPENED = (
        "previous_not_opened",
        _(
            "only if the previous email was not opened (opens are counted unreliably by some mail "
            "apps)"
        ),
    )


class FlowStep(models.Model):
    """One message of a flow: when it comes (after the trigger, or after the previous step) and
    its copy, with the same template language, lint and generic variant as campaigns."""

    flow = models.ForeignKey(
        Flow, on_delete=models.CASCADE, related_name="steps", verbose_name=_("flow")
    )
    position = models.PositiveSmallIntegerField(_("step"))
    delay = models.DurationField(
        _("delay"),
        help_text=_(
            "The first step: after the trigger (the cart's last change, the order, entering "
            "the segment). Later steps: after the previous step was sent, never sooner."
        ),
    )
    local_time = models.TimeField(
        _("at local time"),
        null=True,
        blank=True,
        help_text=_(
            "Send at this time of day in the customer's own time zone (the next such time "
            "after the delay), e.g. 09:00 for a birthday. Empty: as soon as the delay is over."
        ),
    )
    expires_after = models.DurationField(
        _("expires after"),
        default=dt.timedelta(days=2),
        help_text=_(
            "A message held back (quiet hours, the pace) longer than this is skipped instead: "
            "it would come too late."
        ),
    )
    condition = models.CharField(
        _("condition"),
        max_length=24,
        choices=StepCondition.choices,
        default=StepCondition.ALWAYS,
        help_text=_(
            "Checked when the step's message is about to go, from the previous step's "
            "tracking. A step whose condition is not met is skipped (the ledger says so) and "
            "the flow goes on."
        ),
    )
    incentive = models.BooleanField(
        _("ask the shop for an incentive"),
        default=False,
        help_text=_(
            "Ask the shop's adapter for a code (incentive_code()). The copy shows it with "
            "{% if incentive_code %}…{{ incentive_code }}…{% endif %}: without a code, nothing "
            "is promised."
        ),
    )
    subject = models.CharField(_("subject"), max_length=200)
    preheader = models.CharField(_("preheader"), max_length=200, blank=True)
    body = models.TextField(
        _("body"),
        help_text=_(
            "Django template language over plain data: {{ greeting }}, {{ first_name }}, "
            "{{ shop_name }}, {{ incentive_code }}, {% recommendations 4 %}, {% cart_lines %}, "
            "{{ preference_centre_url }} and {{ unsubscribe_url }}."
        ),
    )
    generic_subject = models.CharField(_("generic subject"), max_length=200, blank=True)
    generic_body = models.TextField(
        _("generic body"),
        blank=True,
        help_text=_("For recipients without the personalisation consent. Empty: the body."),
    )
    utm_campaign = models.SlugField(_("utm_campaign"), max_length=100, blank=True)

    class Meta:
        verbose_name = _("flow step")
        verbose_name_plural = _("flow steps")
        ordering = ["flow", "position"]
        constraints = [
            models.UniqueConstraint(fields=["flow", "position"], name="pzn_flowstep_position"),
            models.CheckConstraint(condition=Q(position__gte=1), name="pzn_flowstep_from_one"),
            models.CheckConstraint(
                condition=Q(condition__in=StepCondition.values), name="pzn_flowstep_condition"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.flow} · {self.position}"


class EntryState(models.TextChoices):
    ACTIVE = "active", _("in the flow")
    COMPLETED = "completed", _("completed")
    EXITED = "exited", _("exited")


class ExitReason(models.TextChoices):
    """Why a customer left a flow before its last step (or a planned step was not sent)."""

    FLOW_OFF = "flow_off", _("the flow was switched off")
    ORDERED = "ordered", _("ordered")
    CART_EMPTIED = "cart_emptied", _("emptied or closed the cart")
    CARTED = "carted", _("put something in the cart")
    REBOUGHT = "rebought", _("bought it again")
    NO_CONSENT = "no_consent", _("no consent to marketing email")
    NO_PERSONALIZATION = "no_personalization", _("no consent to personalisation")
    PAUSED = "paused", _("paused their email")
    HIGHER_PRIORITY = "higher_priority", _("entered a flow that goes first")


class FlowEntry(models.Model):
    """One customer's way through one flow, for one trigger."""

    flow = models.ForeignKey(
        Flow, on_delete=models.CASCADE, related_name="entries", verbose_name=_("flow")
    )
    profile = models.ForeignKey(
        Profile,
        on_delete=models.CASCADE,
        related_name="flow_entries",
        verbose_name=_("profile"),
        db_index=False,  # pzn_flowentry_profile
    )
    trigger_key = models.CharField(
        _("trigger"),
        max_length=100,
        help_text=_("What started it (a cart, an order, a stay in a segment, a date): once each."),
    )
    triggered_at = models.DateTimeField(_("triggered at"))
    cart = models.ForeignKey(
        Cart, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    order = models.ForeignKey(
        Order, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    product = models.ForeignKey(
        Product, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    category = models.CharField(_("category"), max_length=500, blank=True)
    entered_at = models.DateTimeField(_("entered"))
    state = models.CharField(
        _("state"), max_length=10, choices=EntryState.choices, default=EntryState.ACTIVE
    )
    next_position = models.PositiveSmallIntegerField(
        _("next step"), default=1, help_text=_("The step to plan next.")
    )
    waiting_since = models.DateTimeField(
        _("waiting since"),
        help_text=_(
            "What the next step's delay counts from: the trigger, then when the previous "
            "step was planned."
        ),
    )
    exit_reason = models.CharField(
        _("exit reason"), max_length=20, choices=ExitReason.choices, blank=True
    )
    ended_at = models.DateTimeField(_("ended"), null=True, blank=True)

    class Meta:
        verbose_name = _("flow entry")
        verbose_name_plural = _("flow entries")
        ordering = ["-entered_at", "-pk"]
        constraints = [
            # A trigger starts a customer's way through a flow once, whoever notices it.
            models.UniqueConstraint(
                fields=["flow", "profile", "trigger_key"], name="pzn_flowentry_once"
            ),
            models.CheckConstraint(
                condition=Q(state__in=EntryState.values), name="pzn_flowentry_state"
            ),
        ]
        indexes = [
            # Beat's advance: active entries whose next step has come.
            models.Index(
                fields=["flow", "next_position", "waiting_since"],
                condition=Q(state="active"),
                name="pzn_flowentry_due",
            ),
            models.Index(fields=["profile", "flow"], name="pzn_flowentry_profile"),
        ]

    def __str__(self) -> str:
        return f"{self.profile} in {self.flow}"
