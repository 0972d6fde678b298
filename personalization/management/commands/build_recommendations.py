"""``manage.py build_recommendations``: rebuild the item-to-item model now."""

from __future__ import annotations

from django.core.management.base import BaseCommand
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from personalization.recommendations import BuildProgress, recommendations_build

BAR_WIDTH = 20


def step_names() -> dict[str, str]:
    return {
        "lock": _("lock taken"),
        "count": _("co-purchases and co-views counted, top neighbours stored"),
        "switch": _("new model made current"),
        "clean": _("earlier models deleted"),
    }


class Command(BaseCommand):
    help = gettext_lazy(
        "Rebuild the item-to-item recommendation model from placed orders and recent product "
        "views, and make it current in one step. Beat does this on "
        "RECOMMENDATION_BUILD_SCHEDULE; run it after importing history."
    )

    def handle(self, *args, **options):
        names = step_names()
        verbosity = options.get("verbosity", 1)

        def progress(state: BuildProgress) -> None:
            if verbosity < 1:
                return
            filled = BAR_WIDTH * state.done // state.total
            # Progress on stderr, the summary on stdout (which scripts read).
            self.stderr.write(
                _("[%(bar)s] %(done)d/%(total)d %(step)s (%(seconds).1f s)")
                % {
                    "bar": "#" * filled + "." * (BAR_WIDTH - filled),
                    "done": state.done,
                    "total": state.total,
                    "step": names.get(state.step, state.step),
                    "seconds": state.seconds,
                }
            )

        report = recommendations_build(progress=progress)
        if report.skipped:
            self.stdout.write(
                _("Another build is running; this one skipped. Its model will be current soon.")
            )
            return
        self.stdout.write(
            _(
                "Built recommendation model #%(build)d in %(seconds).1f s: %(products)d "
                "product(s) with %(neighbours)d neighbour(s); %(removed)d earlier model(s) "
                "deleted."
            )
            % {
                "build": report.build_id,
                "seconds": report.seconds,
                "products": report.products,
                "neighbours": report.neighbours,
                "removed": report.removed,
            }
        )
