"""What is recorded about a customer beyond the profile's own fields: traits, each with where it
came from and, for an inferred one, how sure we are; and the keys the customer removed.

One row per profile and key (:class:`Trait`) is the single source of truth: rule segments,
the export, the preference centre and merges read these rows. The domain functions that write
them are in :mod:`personalization.traits`.
"""

from __future__ import annotations

import re
from decimal import Decimal

from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .preferences import PreferenceSource
from .profiles import Profile

#: A trait's key: a letter, then letters, digits or ``_`` (at most 64), as rules name it
#: (``traits.<key>``).
TRAIT_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
TRAIT_KEY_MAX_LENGTH = 64
#: The longest text a trait's value may be.
TRAIT_TEXT_MAX_LENGTH = 255

trait_key_validator = RegexValidator(
    TRAIT_KEY,
    _("A trait key is a letter, then letters, digits or _ (at most 64 characters)."),
)


class TraitSource(models.TextChoices):
    """Where a trait's value came from. A ``given`` or ``shop`` value is never overwritten by
    an ``inferred`` one."""

    GIVEN = "given", _("given by the customer")
    SHOP = "shop", _("recorded by the shop")
    INFERRED = "inferred", _("inferred")


class TraitQuerySet(models.QuerySet):
    def given_or_recorded(self):
        """Traits someone stated (the customer or the shop), not inferred ones."""
        return self.exclude(source=TraitSource.INFERRED)

    def confident(self, min_confidence: Decimal):
        """Traits that count as known: stated ones, and inferred ones at least this sure."""
        return self.filter(~Q(source=TraitSource.INFERRED) | Q(confidence__gte=min_confidence))


class Trait(models.Model):
    """One thing recorded about a customer: ``shoe_size`` is 38, ``plan`` is "gold"."""

    profile = models.ForeignKey(
        Profile,
        verbose_name=_("profile"),
        on_delete=models.CASCADE,
        related_name="traits",
        help_text=_("The customer it is about."),
    )
    key = models.CharField(
        _("key"),
        max_length=TRAIT_KEY_MAX_LENGTH,
        validators=[trait_key_validator],
        help_text=_(
            "What the trait is, such as shoe_size: a letter, then letters, digits or _. Rules "
            "name it traits.<key>."
        ),
    )
    value = models.JSONField(
        _("value"),
        help_text=_("Text (at most 255 characters), a number, or true/false."),
    )
    source = models.CharField(
        _("source"),
        max_length=16,
        choices=TraitSource.choices,
        help_text=_(
            "given: the customer told us; shop: the shop recorded it (import, admin, shop "
            "code); inferred: computed or guessed from behaviour."
        ),
    )
    confidence = models.DecimalField(
        _("confidence"),
        max_digits=3,
        decimal_places=2,
        null=True,
        blank=True,
        help_text=_(
            "How sure an inferred trait is, from 0 to 1; empty for given and recorded ones. "
            "Segments count an inferred trait only from TRAIT_MIN_CONFIDENCE on."
        ),
    )
    recorded_at = models.DateTimeField(
        _("recorded at"), default=timezone.now, help_text=_("When the key was first recorded.")
    )
    updated_at = models.DateTimeField(
        _("updated at"), default=timezone.now, help_text=_("When the value last changed.")
    )

    objects = TraitQuerySet.as_manager()

    class Meta:
        verbose_name = _("trait")
        verbose_name_plural = _("traits")
        constraints = [
            models.UniqueConstraint(fields=["profile", "key"], name="pzn_trait_unique"),
            models.CheckConstraint(
                condition=Q(source__in=TraitSource.values), name="pzn_trait_source"
            ),
            models.CheckConstraint(
                condition=(
                    Q(
                        source=TraitSource.INFERRED,
                        confidence__isnull=False,
                        confidence__gte=0,
                        confidence__lte=1,
                    )
                    | (~Q(source=TraitSource.INFERRED) & Q(confidence__isnull=True))
                ),
                name="pzn_trait_confidence",
            ),
            models.CheckConstraint(condition=~Q(key=""), name="pzn_trait_key_not_empty"),
        ]
        indexes = [
            # Rule segments select the profiles with a key (and value) across everyone.
            models.Index(fields=["key", "profile"], name="pzn_trait_key_profile"),
        ]

    def __str__(self) -> str:
        return f"{self.key}: {self.value}"


class TraitRemoval(models.Model):
    """A key the customer removed from what we know about them.

    While it exists, neither an inference nor the shop (an import, shop code) adds the key
    back; only the customer giving it again does (which deletes this row).
    """

    profile = models.ForeignKey(
        Profile,
        verbose_name=_("profile"),
        on_delete=models.CASCADE,
        related_name="trait_removals",
        help_text=_("The customer who removed it."),
    )
    key = models.CharField(
        _("key"),
        max_length=TRAIT_KEY_MAX_LENGTH,
        validators=[trait_key_validator],
        help_text=_("The trait's key; it is not recorded again unless the customer gives it."),
    )
    by = models.CharField(
        _("removed through"),
        max_length=32,
        choices=PreferenceSource.choices,
        help_text=_("Where the customer (or someone for them) removed it."),
    )
    removed_at = models.DateTimeField(_("removed at"), default=timezone.now)

    class Meta:
        verbose_name = _("removed trait")
        verbose_name_plural = _("removed traits")
        constraints = [
            models.UniqueConstraint(fields=["profile", "key"], name="pzn_trait_removal_unique"),
            models.CheckConstraint(
                condition=Q(by__in=PreferenceSource.values), name="pzn_trait_removal_by"
            ),
        ]

    def __str__(self) -> str:
        return str(_("%(key)s (removed)") % {"key": self.key})
