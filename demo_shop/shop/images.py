"""Product pictures drawn as SVG from the title and category, so the demo needs no assets."""

from __future__ import annotations

import hashlib
import textwrap

from django.utils.html import escape

# Calm, readable background pairs (top, bottom) picked by category.
_PALETTES = [
    ("#f6d6b8", "#e8a87c"),
    ("#cde7d8", "#8cc3a5"),
    ("#d7e3fc", "#9db4e8"),
    ("#f3d1dc", "#e29ab5"),
    ("#e9e4c9", "#c9bd80"),
    ("#dcd3f0", "#a895d6"),
    ("#cfe9ef", "#86c2d0"),
    ("#f2dccf", "#d6a489"),
]


def _digest(text: str) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)


def product_svg(*, title: str, category: str, size: int = 320) -> str:
    """A square SVG: a gradient chosen by the top category, a shape and the title."""
    top_category = category.split(">")[0].strip() or "Shop"
    light, dark = _PALETTES[_digest(top_category) % len(_PALETTES)]
    seed = _digest(title)
    gradient_id = f"g{seed:x}"
    cx, cy, radius = 110 + seed % 100, 90 + (seed >> 8) % 60, 55 + (seed >> 16) % 40
    lines = textwrap.wrap(title, width=18)[:3]
    first_y = 215 - 12 * (len(lines) - 1)
    text = "".join(
        f'<tspan x="160" y="{first_y + 26 * index}">{escape(line)}</tspan>'
        for index, line in enumerate(lines)
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 320 320" width="{size}" '
        f'height="{size}" role="img" aria-label="{escape(title)}">'
        f'<defs><linearGradient id="{gradient_id}" x1="0" y1="0" x2="0" y2="1">'
        f'<stop offset="0" stop-color="{light}"/><stop offset="1" stop-color="{dark}"/>'
        f"</linearGradient></defs>"
        f'<rect width="320" height="320" rx="18" fill="url(#{gradient_id})"/>'
        f'<circle cx="{cx}" cy="{cy}" r="{radius}" fill="#ffffff" fill-opacity="0.35"/>'
        f'<rect x="{200 - seed % 60}" y="{40 + seed % 50}" width="70" height="70" rx="14" '
        f'fill="#ffffff" fill-opacity="0.2" transform="rotate({seed % 45} 235 95)"/>'
        f'<text font-family="system-ui, sans-serif" font-size="22" font-weight="600" '
        f'fill="#1f2933" text-anchor="middle">{text}</text>'
        f'<text x="160" y="296" font-family="system-ui, sans-serif" font-size="14" '
        f'fill="#1f2933" fill-opacity="0.7" text-anchor="middle">{escape(top_category)}</text>'
        f"</svg>"
    )
