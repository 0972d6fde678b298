"""The template language of campaign copy: Django's, over plain data, with two blocks as tags.

Copy is written by marketers in the admin, so it runs in an engine of its own: Django's
built-in tags and filters, and ``{% recommendations %}`` and ``{% cart_lines %}``; no
``{% load %}`` of other libraries, no ``{% include %}`` or ``{% extends %}`` (they would read
any template), no ``{% debug %}`` (it prints the context). The context holds plain data only
(strings, numbers, lists and dicts the renderer built): no model instance, no settings, no
environment, so a template can show nothing but what it was given.
"""

from __future__ import annotations

from functools import cache

from django import template
from django.template import Engine, Node, TemplateSyntaxError
from django.template.defaulttags import DebugNode, LoadNode
from django.template.loader import render_to_string
from django.utils.translation import gettext as _

register = template.Library()

RECOMMENDATIONS_KEY = "_recommendations"  # filled by the renderer when the copy asks
CART_KEY = "_cart_lines"
FORBIDDEN_NODES = (DebugNode, LoadNode)


class RecommendationsNode(Node):
    def __init__(self, limit: int):
        self.limit = limit

    def render(self, context) -> str:
        items = (context.get(RECOMMENDATIONS_KEY) or [])[: self.limit]
        if not items:
            return ""
        return render_to_string(
            "personalization/email/_recommendations.html",
            {"items": items, "personalized": context.get("personalized", False)},
        )


class CartLinesNode(Node):
    def render(self, context) -> str:
        lines = context.get(CART_KEY) or []
        if not lines:
            return ""
        return render_to_string("personalization/email/_cart_lines.html", {"lines": lines})


@register.tag("recommendations")
def recommendations_tag(parser, token) -> RecommendationsNode:
    """``{% recommendations %}`` or ``{% recommendations 4 %}``: product picks for the
    recipient (bestsellers, said as such, without the personalisation consent)."""
    bits = token.split_contents()
    limit = 4
    if len(bits) > 2 or (len(bits) == 2 and not bits[1].isdigit()):
        raise TemplateSyntaxError(_("Write {% recommendations %} or {% recommendations 4 %}."))
    if len(bits) == 2:
        limit = int(bits[1])
    if not 1 <= limit <= 12:
        raise TemplateSyntaxError(_("{% recommendations %} shows 1 to 12 products."))
    return RecommendationsNode(limit)


@register.tag("cart_lines")
def cart_lines_tag(parser, token) -> CartLinesNode:
    """``{% cart_lines %}``: what is in the recipient's open cart."""
    if len(token.split_contents()) != 1:
        raise TemplateSyntaxError(_("{% cart_lines %} takes nothing."))
    return CartLinesNode()


@cache
def mail_engine() -> Engine:
    return Engine(
        dirs=[],
        app_dirs=False,
        libraries={},
        builtins=[
            "django.template.defaulttags",
            "django.template.defaultfilters",
            "personalization.messaging.templates",
        ],
        autoescape=True,
        string_if_invalid="",
        debug=False,
    )


def _walk(nodelist):
    for node in nodelist:
        yield node
        for name in getattr(node, "child_nodelists", ()):
            yield from _walk(getattr(node, name, None) or [])


def mail_template_compile(source: str) -> template.Template:
    """Compile copy in the mail engine; ``TemplateSyntaxError`` for what it may not do
    (``{% include %}`` and ``{% extends %}`` are not even tags there)."""
    compiled = mail_engine().from_string(source)
    for node in _walk(compiled.nodelist):
        if isinstance(node, FORBIDDEN_NODES):
            raise TemplateSyntaxError(
                _("{%% %(tag)s %%} is not available in campaign copy.")
                % {"tag": node.token.contents.split()[0]}
            )
    return compiled


def uses(compiled: template.Template, node_class: type[Node]) -> bool:
    """Whether the compiled copy holds a block of this kind (so its data must be read)."""
    return any(isinstance(node, node_class) for node in _walk(compiled.nodelist))
