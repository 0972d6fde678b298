from decimal import Decimal

import pytest

from personalization.catalogue import category_path_normalize
from personalization.exceptions import InvalidInput
from personalization.models import Product
from personalization.validation import money

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("category", "sensitive"),
    [
        ("Health", True),
        ("Health > Vitamins", True),
        ("Pharmacy > health > Tests", True),
        ("Beauty > Health", True),
        ("Healthy Snacks", False),
        ("Food > Healthy Snacks", False),
        ("Home > Kitchen", False),
    ],
)
def test_sensitive_categories_match_whole_levels_only(
    settings, product_factory, category, sensitive
):
    settings.PERSONALIZATION = {"SENSITIVE_CATEGORIES": ["Health"]}
    product = product_factory(category_path=category)
    assert Product.objects.sensitive().filter(pk=product.pk).exists() is sensitive
    assert Product.objects.not_sensitive().filter(pk=product.pk).exists() is not sensitive


def test_a_product_the_shop_flagged_is_sensitive_whatever_its_category(product_factory):
    product = product_factory(category_path="Books", is_sensitive=True)
    assert list(Product.objects.sensitive()) == [product]


def test_only_active_products_in_stock_are_available(product_factory):
    shown = product_factory()
    product_factory(in_stock=False)
    product_factory(active=False)
    assert list(Product.objects.available()) == [shown]


@pytest.mark.parametrize(
    ("raw", "path"),
    [
        ("Home/Kitchen", "Home > Kitchen"),
        (" Home >  Kitchen > ", "Home > Kitchen"),
        (["Home", " Kitchen "], "Home > Kitchen"),
        ("", ""),
    ],
)
def test_category_paths_are_normalised(raw, path):
    assert category_path_normalize(raw) == path


@pytest.mark.parametrize(
    ("raw", "amount"),
    [
        ("12.5", Decimal("12.50")),
        (7, Decimal("7.00")),
        (19.9, Decimal("19.90")),
        (Decimal("0"), Decimal("0.00")),
    ],
)
def test_amounts_are_parsed_exactly(raw, amount):
    assert money(raw, field="total") == amount


@pytest.mark.parametrize("raw", ["-1", "1.005", "NaN", "Infinity", "", None, "12,50"])
def test_bad_amounts_are_refused(raw):
    with pytest.raises(InvalidInput) as err:
        money(raw, field="total")
    assert err.value.field == "total"


@pytest.mark.django_db
def test_purchase_cycle_is_set_by_the_shop_and_checked():
    from personalization.catalogue import product_upsert

    product, _ = product_upsert(product_id="sofa", title="Sofa", purchase_cycle="durable")
    assert product.purchase_cycle == "durable"
    other, _ = product_upsert(product_id="mug", title="Mug")
    assert other.purchase_cycle == "unknown"  # the default
    with pytest.raises(InvalidInput) as excinfo:
        product_upsert(product_id="mug", purchase_cycle="sometimes")
    assert excinfo.value.field == "purchase_cycle"
