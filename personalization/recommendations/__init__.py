"""Recommendations: the item-to-item model of which products go together.

Public surface:

- :func:`recommendations_build` counts co-purchases and co-views set-based, normalises them
  (cosine) and stores the top K neighbours of every product as a new build, made current
  atomically; Beat runs it on a schedule, ``manage.py build_recommendations`` on demand.
- :func:`product_neighbours` reads a product's neighbours in the current build.
"""

from .build import (
    STEPS,
    BuildProgress,
    BuildReport,
    build_settings,
    recommendations_build,
)
from .selectors import product_neighbours

__all__ = [
    "STEPS",
    "BuildProgress",
    "BuildReport",
    "build_settings",
    "product_neighbours",
    "recommendations_build",
]
