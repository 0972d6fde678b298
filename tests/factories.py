"""factory_boy factories for the app's models, exposed as fixtures in conftest.py."""

import datetime as dt
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model

from personalization import models
from personalization.catalogue import product_categories_sync


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password("pw")


class ProfileFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Profile

    email = factory.Sequence(lambda n: f"customer{n}@example.com")
    first_name = factory.Faker("first_name")
    timezone = "Europe/Stockholm"
    locale = "sv"
    country = "SE"


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Product
        skip_postgeneration_save = True

    external_id = factory.Sequence(lambda n: f"P{n:05d}")
    sku = factory.LazyAttribute(lambda p: f"SKU-{p.external_id}")
    title = factory.Faker("catch_phrase")
    price = Decimal("19.90")
    currency = "EUR"
    category_path = "Home > Kitchen"

    @factory.post_generation
    def category_levels(product, create, extracted, **kwargs):
        # As the catalogue mirror keeps them (product_upsert and the importers do this).
        if create:
            product_categories_sync(product_ids=[product.pk])


class OrderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Order

    external_id = factory.Sequence(lambda n: f"O{n:06d}")
    profile = factory.SubFactory(ProfileFactory)
    placed_at = factory.LazyFunction(lambda: dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC))
    total = Decimal("39.80")
    currency = "EUR"
    shop_total = factory.SelfAttribute("total")
    source = models.IngestSource.SIGNAL


class TopicFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Topic

    slug = factory.Sequence(lambda n: f"topic-{n}")
    name = factory.Sequence(lambda n: f"Topic {n}")
