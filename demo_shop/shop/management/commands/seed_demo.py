"""Fill the demo shop: its catalogue, then synthetic customers in the personalization app."""

from __future__ import annotations

from django.core.management import call_command, get_commands
from django.core.management.base import BaseCommand, CommandError

from demo_shop.shop import integration
from demo_shop.shop.catalogue_data import product_rows
from demo_shop.shop.models import Product

GENERATOR = "generate_shop_data"
COFFEE_REGULARS = {
    "all": [
        {
            "field": "orders.bought_category",
            "op": "eq",
            "value": "Food & Drink > Coffee",
            "within_days": 180,
            "at_least": 2,
        },
        {"field": "consent.email_marketing", "op": "eq", "value": "granted"},
    ]
}


class Command(BaseCommand):
    help = (
        "Create the demo catalogue (about 40 products; the app mirrors them through "
        "product_saved) and seed synthetic customers, orders, carts, events and consents. "
        "Safe to run again."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--no-synthetic",
            action="store_true",
            help="Only create the catalogue; skip the synthetic customers.",
        )
        parser.add_argument("--profiles", type=int, default=300, help="Synthetic customers.")
        parser.add_argument("--seed", type=int, default=42, help="Random seed of the generator.")

    def handle(self, *args, no_synthetic=False, profiles=300, seed=42, **options):
        self._catalogue()
        if no_synthetic:
            return
        if GENERATOR not in get_commands():
            self.stderr.write(
                self.style.WARNING(
                    f"Skipped the synthetic customers: this version of django-personalization "
                    f"has no '{GENERATOR}' command yet. The shop works, with its catalogue "
                    f"and whatever you do in it."
                )
            )
            return
        self.stdout.write(f"Seeding {profiles} synthetic customers (seed {seed})…")
        self.stdout.flush()
        try:
            call_command(
                GENERATOR,
                profiles=profiles,
                seed=seed,
                existing_catalogue=True,
                # The underlying streams: wrapping our OutputWrapper again would break endings.
                stdout=self.stdout._out,
                stderr=self.stderr._out,
            )
        except CommandError as err:
            if not _already_generated(err):
                raise
            # Generating twice with one seed is refused, and that is what makes this idempotent.
            self.stdout.write(f"Synthetic customers for seed {seed} are there already; skipped.")
        self._new_subscribers()
        if "refresh_segments" in get_commands():
            self._example_segment()
            # The generator writes in bulk, past the realtime updates: compute segments now, so
            # the admin shows them at once rather than after Beat's first refresh.
            call_command("refresh_segments", stdout=self.stdout._out, stderr=self.stderr._out)
        # Likewise the recommendation model: built now, so a product's admin page shows its
        # neighbours at once rather than after Beat's nightly build.
        call_command("build_recommendations", stdout=self.stdout._out, stderr=self.stderr._out)
        self._example_campaigns()
        self._flow_examples()

    def _example_campaigns(self) -> None:
        """Two campaigns: a draft to preview, test-send and schedule in the admin, and one
        already scheduled to the loyal customers, which Beat plans and sends within a minute
        of the demo starting (the outbox shows it, with the policy's reasons in the ledger)."""
        from personalization.messaging import campaign_schedule
        from personalization.models import Campaign, CampaignStatus, Segment, Topic

        for example in EXAMPLE_CAMPAIGNS:
            fields = dict(example)
            topic = Topic.objects.filter(slug=fields.pop("topic")).first()
            audience = Segment.objects.filter(slug=fields.pop("segment")).first()
            schedule = fields.pop("schedule")
            if not (topic and audience):
                continue
            made, created = Campaign.objects.get_or_create(
                name=fields.pop("name"), defaults={**fields, "topic": topic}
            )
            if created:
                made.include_segments.set([audience])
            if schedule and made.status == CampaignStatus.DRAFT:
                campaign_schedule(campaign=made)
        self.stdout.write(
            "Campaigns: a draft to try in the admin, and one scheduled to the loyal customers."
        )

    def _new_subscribers(self) -> None:
        """Two customers who signed up just now (before the segments are computed, so that
        they are leads from the start): the welcome flow greets them."""
        from personalization.consent import consent_confirm, consent_record
        from personalization.models import Profile, Purpose

        for name, email in NEW_SUBSCRIBERS:
            profile, created = Profile.objects.get_or_create(
                email=email,
                defaults={"first_name": name, "locale": "en", "timezone": "Europe/London"},
            )
            if created:
                grant = consent_record(
                    profile=profile,
                    purpose=Purpose.EMAIL_MARKETING,
                    granted=True,
                    source="signup",
                )
                consent_confirm(grant=grant)
                consent_record(
                    profile=profile, purpose=Purpose.PERSONALIZATION, granted=True, source="signup"
                )

    def _flow_examples(self) -> None:
        """Situations the flows are for, as of now, so that Beat's first minutes fill the
        outbox with flow messages: carts left a couple of hours ago (abandoned cart), birthdays
        today; with the new subscribers (welcome). The synthetic shop brings the lapsed customers
        (win-back) and recent first orders (post-purchase) itself."""
        import datetime as dt

        from django.utils import timezone

        from personalization.consent import consented_q
        from personalization.models import Cart, CartStatus, Profile, Purpose
        from personalization.models import Product as Mirrored

        now = timezone.now()
        reachable = (
            Profile.objects.filter(consented_q(Purpose.EMAIL_MARKETING))
            .exclude(email="")
            .exclude(email__in=[email for _name, email in NEW_SUBSCRIBERS])
            .order_by("pk")
        )
        products = list(Mirrored.objects.available().not_sensitive().order_by("pk")[:3])
        left = now - dt.timedelta(hours=2, minutes=5)
        carts = 0
        for profile in reachable[:3]:
            cart, created = Cart.objects.get_or_create(
                external_id=f"demo-left-{profile.pk}",
                defaults={
                    "profile": profile,
                    "status": CartStatus.OPEN,
                    "currency": "EUR",
                    "total": sum(p.price for p in products[:2]),
                    "shop_total": sum(p.price for p in products[:2]),
                    "source_updated_at": left,
                },
            )
            if created:
                for product in products[:2]:
                    cart.lines.create(product=product, quantity=1, unit_price=product.price)
                carts += 1
        today = timezone.localdate()
        birthdays = Profile.objects.filter(pk__in=reachable[3:5].values("pk")).update(
            birthday=dt.date(1990, today.month, min(today.day, 28))
        )
        self.stdout.write(
            f"Flows: {len(NEW_SUBSCRIBERS)} new subscribers, {carts} carts left two hours ago, "
            f"{birthdays} birthdays today; Beat sends their messages within a minute or two."
        )

    def _example_segment(self) -> None:
        """A rule segment as a marketer would make one, to open in the admin's rule builder."""
        from personalization.segments.definitions import rule_segment_define

        rule_segment_define(
            slug="coffee_regulars",
            name="Coffee regulars",
            description="Bought coffee at least twice in the last six months, and subscribed.",
            rule=COFFEE_REGULARS,
        )

    def _catalogue(self) -> None:
        rows = product_rows()
        created = updated = 0
        for number, row in enumerate(rows, start=1):
            stock = row.pop("stock")
            product = Product.objects.filter(slug=row["slug"]).first()
            if product is None:
                # Saving fires post_save, which sends product_saved: the app mirrors it.
                Product.objects.create(**row, stock=stock)
                created += 1
            elif any(getattr(product, name) != value for name, value in row.items()):
                for name, value in row.items():
                    setattr(product, name, value)
                product.save()
                updated += 1
            else:
                # Unchanged: send it anyway, so a mirror that lost it catches up.
                integration.product_changed(product)
            self._progress("Catalogue", number, len(rows))
        self.stdout.write(
            f"Catalogue: {created} created, {updated} updated, "
            f"{len(rows) - created - updated} unchanged."
        )

    def _progress(self, label: str, done: int, total: int) -> None:
        if not self.stdout.isatty():
            return
        width = 30
        filled = width * done // total
        end = "\n" if done == total else ""
        self.stdout.write(
            f"\r{label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}", ending=end
        )
        self.stdout.flush()


DRAFT_BODY = """<p>{{ greeting }}</p>
<p>Our autumn roasts are in: three single origins, roasted this week in small batches.</p>
{% recommendations 3 %}
<p>Happy brewing!</p>"""

LOYAL_BODY = """<p>{{ greeting }}</p>
<p>Thank you for shopping with us. Here is what is new this week.</p>
{% recommendations 4 %}
<p><a href="{{ site_url }}">Visit the shop</a></p>"""

# Signed up just now: the welcome flow greets them within minutes of the demo starting.
NEW_SUBSCRIBERS = [("Maya", "maya.new@example.com"), ("Jonas", "jonas.new@example.com")]

# A draft to try in the admin, and one that Beat sends as soon as the demo runs.
EXAMPLE_CAMPAIGNS = [
    {
        "name": "Coffee regulars: autumn roasts (draft)",
        "topic": "coffee-and-tea",
        "segment": "coffee_regulars",
        "subject": "{{ greeting }} the autumn roasts are in",
        "preheader": "Three new single origins, roasted this week.",
        "body": DRAFT_BODY,
        "generic_subject": "The autumn roasts are in",
        "schedule": False,
    },
    {
        "name": "Loyal customers: new arrivals",
        "topic": "new-arrivals",
        "segment": "loyal",
        "subject": "{{ greeting }} new in the shop this week",
        "preheader": "A few things we think you will like.",
        "body": LOYAL_BODY,
        "utm_campaign": "loyal-new-arrivals",
        "schedule": True,
    },
]


def _already_generated(err: CommandError) -> bool:
    try:
        from personalization.synthetic import SyntheticDataExists
    except ImportError:
        return False
    return isinstance(err.__cause__, SyntheticDataExists)
