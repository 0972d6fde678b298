"""Traits: what is recorded about a customer beyond the profile's fields, each with its source
(given by the customer, recorded by the shop, or inferred) and, when inferred, how sure we are.

- :mod:`.services`: ``traits_set`` (upsert; a given or recorded value is never overwritten by
  an inferred one), ``trait_remove`` (the customer removes an item: it stays removed),
  ``traits_merge`` (used by ``profile_merge``);
- :mod:`.selectors`: ``traits_of``, ``trait_min_confidence``, ``confidence_text``.

The rows live in :class:`personalization.models.Trait`; removals in
:class:`personalization.models.TraitRemoval`.
"""

from .selectors import TraitValue, confidence_text, trait_min_confidence, traits_of
from .services import TraitScalar, trait_remove, traits_merge, traits_set

__all__ = [
    "TraitScalar",
    "TraitValue",
    "confidence_text",
    "trait_min_confidence",
    "trait_remove",
    "traits_merge",
    "traits_of",
    "traits_set",
]
