"""A synthetic shop at any scale: realistic customers, consent, orders, carts and browsing.

``shop_data_generate(profiles=…, seed=…)`` is what the ``generate_shop_data`` management
command calls; see ``docs/reference/generate_shop_data.md``. The package is split by job:

- ``vocabulary``: the fixed material (markets, names, categories, topics);
- ``catalogue``: the products bought — generated, or the shop's own mirror;
- ``planner``: one profile's whole history in plain Python, from its own seeded RNG;
- ``generate``: the chunked, batched writer and the final statistics rebuild.
"""

from .generate import (
    GenerationReport,
    Progress,
    SyntheticDataExists,
    default_until,
    shop_data_generate,
)

__all__ = [
    "GenerationReport",
    "Progress",
    "SyntheticDataExists",
    "default_until",
    "shop_data_generate",
]
