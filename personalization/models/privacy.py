"""The suppression list: addresses the shop must not mail, kept as salted hashes only."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.db.models.functions import Length
from django.db.models.lookups import Exact
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class SuppressionReason(models.TextChoices):
    UNSUBSCRIBED = "unsubscribed", _("unsubscribed")
    HARD_BOUNCE = "hard_bounce", _("hard bounce")
    COMPLAINT = "complaint", _("spam complaint")
    ERASED = "erased", _("erased at the person's request")


class SuppressionSource(models.TextChoices):
    """Who asked for the suppression (for an erasure: who asked for it)."""

    ADMIN = "admin", _("admin")
    COMMAND = "command", _("management command")
    PREFERENCE_CENTRE = "preference_centre", _("preference centre")
    API = "api", _("API")
    SHOP = "shop", _("the shop's own code")
    EMAIL_SERVICE = "email_service", _("the email service (a bounce, a complaint, an unsubscribe)")


class SuppressionQuerySet(models.QuerySet):
    def erased(self):
        return self.filter(reason=SuppressionReason.ERASED)


class Suppression(models.Model):
    """One address the shop must not mail (or re-subscribe without a new consent), and why.

    Only an HMAC of the normalised address is kept (``personalization.privacy.suppression``):
    enough to recognise the address when it comes back, not to read it.
    """

    email_hash = models.CharField(
        _("email hash"),
        max_length=64,
        help_text=_(
            "HMAC-SHA256 of the normalised email address, keyed with SUPPRESSION_HASH_KEY "
            "(hex). Changing that key makes every hash here stop matching."
        ),
    )
    reason = models.CharField(
        _("reason"), max_length=16, choices=SuppressionReason.choices, db_index=False
    )
    source = models.CharField(
        _("source"),
        max_length=32,
        choices=SuppressionSource.choices,
        help_text=_("Who asked for it."),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)

    objects = SuppressionQuerySet.as_manager()

    class Meta:
        verbose_name = _("suppressed address")
        verbose_name_plural = _("suppression list")
        ordering = ["-created_at", "-pk"]
        constraints = [
            # Also the index of every lookup, which asks for a hash (and a reason).
            models.UniqueConstraint(
                fields=["email_hash", "reason"], name="pzn_suppression_hash_reason_unique"
            ),
            models.CheckConstraint(
                condition=Q(Exact(Length("email_hash"), 64)), name="pzn_suppression_hash_length"
            ),
            models.CheckConstraint(
                condition=Q(reason__in=SuppressionReason.values), name="pzn_suppression_reason"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_reason_display()}: {self.email_hash[:12]}…"
