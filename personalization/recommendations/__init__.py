"""Recommendations: the item-to-item model of which products go together.

Public surface:

- :func:`recommendations_build` counts co-purchases and co-views set-based, normalises them
  (cosine) and stores the top K neighbours of every product as a new build, made current
  atomically; Beat runs it on a schedule, ``manage.py build_recommendations`` on demand.
- :func:`product_neighbours` reads a product's neighbours in the current build.
- :func:`recommend_for_profile` (:func:`recommend_for_profiles` for a batch of customers) and
  :func:`recommend_for_product` read what to show, with a
  reason code per pick and whether the customer's own data was used (``personalized``).
- :func:`replenishment_for_profile` and :func:`replenishment_due` say when customers are due to
  buy a consumable again (the product's interval, or one the build learned).
"""

from .build import (
    STEPS,
    BuildProgress,
    BuildReport,
    build_settings,
    recommendations_build,
)
from .recommend import (
    Reason,
    Recommendation,
    Recommendations,
    recommend_for_product,
    recommend_for_profile,
    recommend_for_profiles,
    recommend_popular,
)
from .replenishment import Due, replenishment_due, replenishment_for_profile
from .selectors import learned_interval, product_neighbours

__all__ = [
    "STEPS",
    "BuildProgress",
    "BuildReport",
    "Due",
    "Reason",
    "Recommendation",
    "Recommendations",
    "build_settings",
    "learned_interval",
    "product_neighbours",
    "recommend_for_product",
    "recommend_for_profile",
    "recommend_for_profiles",
    "recommend_popular",
    "recommendations_build",
    "replenishment_due",
    "replenishment_for_profile",
]
