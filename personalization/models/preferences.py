"""The history of a customer's preference changes (consent changes go to the consent ledger)."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .profiles import Profile


class PreferenceField(models.TextChoices):
    """Which preference changed. ``subject`` names the topic or channel for those two."""

    TOPIC = "topic", _("topic")
    CHANNEL = "channel", _("channel")
    FREQUENCY = "frequency", _("frequency")
    PAUSE = "pause", _("pause")
    GREETING = "greeting", _("greeting")


class PreferenceSource(models.TextChoices):
    """Where the customer (or someone for them) made the change."""

    PREFERENCE_CENTRE = "preference_centre", _("preference centre")
    ACCOUNT = "account", _("the customer's account page")
    API = "api", _("API")
    ADMIN = "admin", _("admin")


# Values of ``old_value``/``new_value`` for a topic or a channel.
ON, OFF = "on", "off"


class PreferenceChangeQuerySet(models.QuerySet):
    def latest_first(self):
        return self.order_by("-changed_at", "-pk")


class PreferenceChange(models.Model):
    """One change of one preference: what it was, what it became, when, where, and under
    which wording. Written by ``personalization.preferences.services`` only."""

    profile = models.ForeignKey(
        Profile,
        verbose_name=_("profile"),
        on_delete=models.CASCADE,
        related_name="preference_changes",
    )
    field = models.CharField(_("preference"), max_length=16, choices=PreferenceField.choices)
    subject = models.CharField(
        _("topic or channel"),
        max_length=64,
        blank=True,
        help_text=_("The topic's slug or the channel, for a topic or channel change."),
    )
    old_value = models.CharField(
        _("old value"),
        max_length=64,
        blank=True,
        help_text=_(
            "on/off for a topic or channel, the choice's value for frequency and greeting, "
            "the end of the pause (ISO 8601) or empty for none."
        ),
    )
    new_value = models.CharField(_("new value"), max_length=64, blank=True)
    source = models.CharField(_("source"), max_length=32, choices=PreferenceSource.choices)
    wording_version = models.CharField(
        _("wording version"),
        max_length=64,
        blank=True,
        help_text=_("Identifies the exact text the customer was shown, e.g. preferences-2026-05."),
    )
    changed_at = models.DateTimeField(_("changed at"), default=timezone.now)

    objects = PreferenceChangeQuerySet.as_manager()

    class Meta:
        verbose_name = _("preference change")
        verbose_name_plural = _("preference history")
        ordering = ["-changed_at", "-pk"]
        indexes = [
            models.Index(fields=["profile", "-changed_at", "-id"], name="pzn_pref_change_latest"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(field__in=PreferenceField.values), name="pzn_pref_change_field"
            ),
            models.CheckConstraint(
                condition=Q(source__in=PreferenceSource.values), name="pzn_pref_change_source"
            ),
            # A topic or channel change names its subject; the others have none.
            models.CheckConstraint(
                condition=(
                    Q(field__in=[PreferenceField.TOPIC, PreferenceField.CHANNEL]) & ~Q(subject="")
                )
                | (~Q(field__in=[PreferenceField.TOPIC, PreferenceField.CHANNEL]) & Q(subject="")),
                name="pzn_pref_change_subject",
            ),
            models.CheckConstraint(
                condition=~Q(old_value=models.F("new_value")), name="pzn_pref_change_changed"
            ),
        ]

    def __str__(self) -> str:
        what = f"{self.get_field_display()} {self.subject}".strip()
        return f"{what}: {self.old_value or '–'} → {self.new_value or '–'}"
