"""Reading traits: a profile's traits, which of them count as known, and how sure we are in
words."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db.models import QuerySet
from django.utils.translation import gettext as _

from ..conf import app_settings
from ..models import Profile, Trait, TraitSource
from ..validation import saved_instance_check

# How sure an inferred trait is, in words: (lowest confidence, words), highest first.
_CONFIDENCE_WORDS = (
    (Decimal("0.95"), lambda: _("almost certain")),
    (Decimal("0.80"), lambda: _("fairly sure")),
    (Decimal("0.50"), lambda: _("not very sure")),
    (Decimal("0"), lambda: _("a guess")),
)


def traits_of(*, profile: Profile) -> QuerySet[Trait]:
    """``profile``'s traits, by key: given, recorded and inferred (whatever their confidence)."""
    saved_instance_check(profile, Profile, field="profile")
    return Trait.objects.filter(profile=profile).order_by("key")


def trait_min_confidence() -> Decimal:
    """``TRAIT_MIN_CONFIDENCE`` as a Decimal: inferred traits less sure do not count."""
    return Decimal(str(app_settings.TRAIT_MIN_CONFIDENCE))


def confidence_text(confidence: Decimal | float | None) -> str:
    """How sure an inferred trait is, in words: "fairly sure (80%)". Empty for None."""
    if confidence is None:
        return ""
    confidence = Decimal(str(confidence))
    words = next(text() for lowest, text in _CONFIDENCE_WORDS if confidence >= lowest)
    return _("%(words)s (%(percent)d%%)") % {"words": words, "percent": int(confidence * 100)}


@dataclass(frozen=True)
class TraitValue:
    """A trait as rules and explanations see it: its value, where it came from, how sure, and
    whether it counts (an inferred trait below ``TRAIT_MIN_CONFIDENCE`` does not)."""

    value: str | int | float | bool
    source: str
    confidence: Decimal | None
    counts: bool

    @classmethod
    def of(cls, trait: Trait, *, min_confidence: Decimal) -> TraitValue:
        counts = trait.source != TraitSource.INFERRED or (
            trait.confidence is not None and trait.confidence >= min_confidence
        )
        return cls(trait.value, trait.source, trait.confidence, counts)

    def __str__(self) -> str:
        if self.source == TraitSource.INFERRED:
            how = _("inferred, %(sure)s") % {"sure": confidence_text(self.confidence)}
            if not self.counts:
                how += "; " + _("below the confidence segments need")
        else:
            how = str(TraitSource(self.source).label)
        return f"{self.value!r} ({how})" if isinstance(self.value, str) else f"{self.value} ({how})"
