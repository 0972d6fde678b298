"""``manage.py import_orders``: backfilling historical orders from CSV, as a user sees it."""

import datetime as dt
import re
import threading
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from personalization.adapter import DefaultAdapter
from personalization.importing import orm as importing_orm
from personalization.importing import postgres as importing_postgres
from personalization.importing import stats as importing_stats
from personalization.importing import writing as importing_writing
from personalization.importing.products import ProductKeys
from personalization.models import (
    IngestSource,
    Order,
    OrderLine,
    OrderStatus,
    Product,
    Profile,
    ProfileAlias,
)
from personalization.stats import profile_stats_refresh

LINE_HEADER = (
    "order_id,email,placed_at,total,currency,status,first_name,last_name,"
    "product_id,sku,title,category,quantity,unit_price"
)
ORDER_HEADER = "order_id,email,placed_at,total,currency"
BAD_ROWS = 3  # the documented exit status when some rows were bad


@pytest.fixture(autouse=True)
def _app_settings(settings):
    settings.PERSONALIZATION = {"CURRENCY": "EUR", "DEFAULT_CURRENCY": None}


@pytest.fixture
def csv_file(tmp_path):
    """Write a CSV file from a header and rows; returns its path."""
    count = 0

    def write(header: str, *rows: str, encoding: str = "utf-8") -> str:
        nonlocal count
        count += 1
        path = tmp_path / f"orders-{count}.csv"
        path.write_bytes("\n".join([header, *rows, ""]).encode(encoding))
        return str(path)

    return write


class Run:
    def __init__(self, stdout: str, stderr: str, status: int):
        self.stdout, self.stderr, self.status = stdout, stderr, status

    def summary(self, label: str) -> int:
        for line in self.stdout.splitlines():
            if line.startswith(label + "  "):
                return int(line.split()[-1].replace(",", ""))
        raise AssertionError(f"no {label!r} in the summary:\n{self.stdout}")


@pytest.fixture
def run_import(db):
    """Run the command as a user would; returns its output and exit status."""

    def run(path: str, **options) -> Run:
        out, err = StringIO(), StringIO()
        try:
            call_command("import_orders", path, stdout=out, stderr=err, **options)
        except CommandError as error:
            if error.returncode != BAD_ROWS:
                raise
            return Run(out.getvalue(), err.getvalue(), error.returncode)
        return Run(out.getvalue(), err.getvalue(), 0)

    return run


def line(
    order_id,
    email="ann@example.com",
    placed="2024-03-01T10:00:00+01:00",
    total="30.00",
    currency="EUR",
    status="",
    first="",
    last="",
    product="P1",
    sku="",
    title="Mug",
    category="Home/Kitchen",
    quantity="1",
    price="10.00",
):
    return ",".join(
        [
            order_id,
            email,
            placed,
            total,
            currency,
            status,
            first,
            last,
            product,
            sku,
            title,
            category,
            quantity,
            price,
        ]
    )


# --- Good files ------------------------------------------------------------------------------


def test_per_line_file_creates_orders_lines_profiles_and_products(csv_file, run_import):
    path = csv_file(
        LINE_HEADER,
        line(
            "1001",
            email=" Ann@Example.COM ",
            first="Ann",
            last="Lind",
            total="30.00",
            quantity="2",
            price="10.00",
        ),
        line(
            "1001",
            email=" Ann@Example.COM ",
            first="Ann",
            last="Lind",
            total="30.00",
            product="P2",
            title="Plate",
            category="Home > Kitchen > Plates",
            price="10.00",
        ),
        line("1002", email="bob@example.com", placed="2024-03-02T09:30:00Z", total="10.00"),
    )

    run = run_import(path)

    assert run.status == 0
    assert run.summary("orders imported") == 2
    assert run.summary("profiles created") == 2
    assert run.summary("products created") == 2
    ann = Profile.objects.get(email="ann@example.com")
    assert (ann.first_name, ann.last_name) == ("Ann", "Lind")
    order = Order.objects.get(external_id="1001")
    assert order.profile == ann
    assert order.source == IngestSource.IMPORT
    assert order.status == OrderStatus.PLACED
    assert order.total == Decimal("30.00") and order.currency == "EUR"
    assert order.placed_at == dt.datetime(2024, 3, 1, 9, 0, tzinfo=dt.UTC)
    assert sorted(order.lines.values_list("product__external_id", "quantity", "unit_price")) == [
        ("P1", 2, Decimal("10.00")),
        ("P2", 1, Decimal("10.00")),
    ]
    mug = Product.objects.get(external_id="P1")
    assert (mug.title, mug.category_path) == ("Mug", "Home > Kitchen")
    assert OrderLine.objects.count() == 3


def test_per_order_file_imports_orders_without_lines(csv_file, run_import, settings):
    settings.PERSONALIZATION = {"CURRENCY": "SEK"}
    path = csv_file(
        ORDER_HEADER,
        "A-1,ann@example.com,2024-01-05T12:00:00+00:00,99.90,SEK",
        "A-2,ann@example.com,2024-02-05T12:00:00+00:00,0,sek",
    )

    run = run_import(path)

    assert run.status == 0
    assert run.summary("orders imported") == 2
    assert list(Order.objects.order_by("external_id").values_list("external_id", "currency")) == [
        ("A-1", "SEK"),
        ("A-2", "SEK"),
    ]
    assert not OrderLine.objects.exists()


def test_existing_profiles_products_and_former_emails_are_reused(
    csv_file, run_import, profile_factory, product_factory
):
    known = profile_factory(email="known@example.com", first_name="Kim")
    moved = profile_factory(email="new-address@example.com")
    ProfileAlias.objects.create(
        profile=moved, kind=ProfileAlias.Kind.EMAIL, value="old@example.com"
    )
    product_factory(external_id="P1", title="The shop's own title", category_path="Kitchen")
    product_factory(external_id="P9", sku="SKU-9", title="Found by SKU")
    path = csv_file(
        LINE_HEADER,
        line("1", email="KNOWN@example.com", first="Someone else", title="Old title"),
        line("2", email="old@example.com", product="", sku="SKU-9", title=""),
    )

    run = run_import(path)

    assert run.status == 0
    assert run.summary("profiles created") == 0
    assert run.summary("products created") == 0
    assert Order.objects.get(external_id="1").profile == known
    assert Order.objects.get(external_id="2").profile == moved
    known.refresh_from_db()
    assert known.first_name == "Kim"  # an import never overwrites what the app knows
    assert Product.objects.get(external_id="P1").title == "The shop's own title"
    assert Order.objects.get(external_id="2").lines.get().product.external_id == "P9"


def test_a_line_with_only_a_sku_creates_a_product_with_the_sku_as_id(csv_file, run_import):
    path = csv_file(LINE_HEADER, line("1", product="", sku="SKU-77", title="Teapot"))

    run_import(path)

    teapot = Product.objects.get(external_id="SKU-77")
    assert (teapot.sku, teapot.title) == ("SKU-77", "Teapot")


def test_a_product_named_by_id_and_by_sku_alone_in_one_file_is_created_once(csv_file, run_import):
    path = csv_file(
        LINE_HEADER,
        line("1", product="SKU-77", sku="SKU-77", title="Teapot"),
        line("2", product="", sku="SKU-77", title="Teapot"),
    )

    run = run_import(path)

    assert run.status == 0
    assert run.summary("products created") == 1
    teapot = Product.objects.get(external_id="SKU-77")
    assert OrderLine.objects.filter(product=teapot).count() == 2


def test_default_currency_fills_an_empty_currency(settings, csv_file, run_import):
    settings.PERSONALIZATION = {"CURRENCY": "EUR", "DEFAULT_CURRENCY": "EUR"}
    path = csv_file(ORDER_HEADER, "1,ann@example.com,2024-01-05T12:00:00+00:00,10,")

    assert run_import(path).status == 0
    assert Order.objects.get().currency == "EUR"


def test_timezone_option_places_times_without_offset(csv_file, run_import):
    path = csv_file(ORDER_HEADER, "1,ann@example.com,2024-07-01T12:00:00,10,EUR")

    run = run_import(path, timezone="Europe/Stockholm")

    assert run.status == 0
    assert Order.objects.get().placed_at == dt.datetime(2024, 7, 1, 10, 0, tzinfo=dt.UTC)


def test_status_column_keeps_cancelled_orders_out_of_the_stats(csv_file, run_import):
    path = csv_file(
        LINE_HEADER,
        line("1", total="30.00", status="placed"),
        line("2", total="50.00", status="Cancelled"),
        line("3", total="20.00", status="refunded"),
    )

    run_import(path)

    assert dict(Order.objects.values_list("external_id", "status")) == {
        "1": OrderStatus.PLACED,
        "2": OrderStatus.CANCELLED,
        "3": OrderStatus.REFUNDED,
    }
    ann = Profile.objects.get(email="ann@example.com")
    assert (ann.orders_count, ann.total_spent) == (1, Decimal("30.00"))


def test_a_utf8_file_with_a_byte_order_mark_and_other_encodings(csv_file, run_import):
    header = ORDER_HEADER + ",first_name"
    bom = csv_file(
        header, "1,asa@example.com,2024-01-05T12:00:00+00:00,10,EUR,Åsa", encoding="utf-8-sig"
    )
    latin = csv_file(
        header, "2,bjorn@example.com,2024-01-05T12:00:00+00:00,10,EUR,Bjørn", encoding="latin-1"
    )

    assert run_import(bom).status == 0
    assert run_import(latin, encoding="latin-1").status == 0
    assert set(Profile.objects.values_list("first_name", flat=True)) == {"Åsa", "Bjørn"}


# --- Bad rows --------------------------------------------------------------------------------


def test_bad_rows_are_reported_by_line_and_their_orders_left_out(csv_file, run_import):
    path = csv_file(
        LINE_HEADER,
        line("good-1"),  # line 2
        line("bad-email", email="ann@@example"),  # 3
        line("bad-date", placed="yesterday"),  # 4
        line("naive-date", placed="2024-03-01 10:00:00"),  # 5
        line("negative-total", total="-1.00"),  # 6
        line("zero-qty", quantity="0"),  # 7
        line("negative-qty", quantity="-2"),  # 8
        line("", email="x@example.com"),  # 9: no order id
        line("no-currency", currency=""),  # 10
        line("bad-price", price="ten"),  # 11
        line("good-2"),  # 12
    )

    run = run_import(path)

    assert run.status == 3
    assert set(Order.objects.values_list("external_id", flat=True)) == {"good-1", "good-2"}
    assert run.summary("orders imported") == 2
    assert run.summary("orders skipped as bad") == 9
    errors = run.stderr.splitlines()
    expected = {
        3: "email",
        4: "placed_at",
        5: "no UTC offset",
        6: "cannot be negative",
        7: "at least 1",
        8: "at least 1",
        9: "order_id",
        10: "currency",
        11: "unit_price",
    }
    for number, reason in expected.items():
        assert any(re.match(rf"line {number}\b", e) and reason in e for e in errors), number


def test_one_bad_line_leaves_out_the_whole_order(csv_file, run_import):
    path = csv_file(
        LINE_HEADER,
        line("1", product="P1", total="20.00"),
        line("1", product="P2", total="20.00", quantity="0"),
        line("2", product="P1"),
    )

    run = run_import(path)

    assert run.status == 3
    assert "line 3 (order 1): quantity" in run.stderr
    assert list(Order.objects.values_list("external_id", flat=True)) == ["2"]
    assert OrderLine.objects.count() == 1


def test_rows_of_one_order_must_agree_on_the_order_fields(csv_file, run_import):
    path = csv_file(
        LINE_HEADER,
        line("1", product="P1", total="20.00"),
        line("1", product="P2", total="25.00"),
    )

    run = run_import(path)

    assert "line 3 (order 1): total differ from line 2" in run.stderr
    assert not Order.objects.exists()


def test_rows_of_an_order_that_are_not_adjacent_are_reported(csv_file, run_import):
    path = csv_file(
        LINE_HEADER,
        line("1", product="P1"),
        line("2", product="P1"),
        line("1", product="P2"),
    )

    run = run_import(path)

    assert run.status == 3
    assert "line 4 (order 1): order 1 started at line 2" in run.stderr
    assert list(Order.objects.values_list("external_id", flat=True)) == ["2"]


def test_values_the_database_cannot_hold_are_bad_rows_not_a_crash(csv_file, run_import):
    path = csv_file(
        LINE_HEADER,
        line("1", quantity="²"),
        line("2", quantity="3000000000"),
        line("3", email="a" * 243 + "@example.com"),
        line("4", title="Mug\x00"),
        line("5"),
    )

    run = run_import(path)

    assert run.status == BAD_ROWS
    assert "line 2 (order 1): quantity: The quantity must be a whole number" in run.stderr
    assert "line 3 (order 2): quantity: The quantity is too large" in run.stderr
    assert "line 4 (order 3): email: An email address has at most 254 characters" in run.stderr
    assert "line 5 (order 4): title: Contains a NUL character" in run.stderr
    assert list(Order.objects.values_list("external_id", flat=True)) == ["5"]


def test_times_the_database_cannot_hold_or_in_the_future_are_bad_rows(
    csv_file, run_import, time_machine
):
    time_machine.move_to(dt.datetime(2026, 5, 1, 12, tzinfo=dt.UTC), tick=False)
    path = csv_file(
        LINE_HEADER,
        line("1", placed="0001-01-01T00:00:00+14:00"),
        line("2", placed="9999-12-31T23:00:00-12:00"),
        line("3", placed="2026-05-01T12:06:00+00:00"),  # past the 5 minutes of clock skew
        line("4", placed="2999-01-01T00:00:00+00:00"),
        line("5", placed="2026-05-01T12:04:00+00:00"),
        line("6"),
    )

    run = run_import(path)

    assert run.status == BAD_ROWS
    for number in (2, 3):
        assert (
            f"line {number} (order {number - 1}): placed_at: The date and time is outside the "
            "years 1 to 9999 in UTC" in run.stderr
        )
    for number in (4, 5):
        assert (
            f"line {number} (order {number - 1}): placed_at: The date and time is more than "
            "5 minutes ahead of the server's clock" in run.stderr
        )
    assert sorted(Order.objects.values_list("external_id", flat=True)) == ["5", "6"]


def test_times_without_offset_outside_the_years_in_utc_are_bad_rows(csv_file, run_import):
    path = csv_file(ORDER_HEADER, "1,ann@example.com,9999-12-31T23:30:00,1.00,EUR")

    run = run_import(path, timezone="America/Los_Angeles")

    assert run.status == BAD_ROWS
    assert "line 2 (order 1): placed_at: The date and time is outside the years" in run.stderr
    assert not Order.objects.exists()


def test_unknown_product_without_a_title_is_a_bad_row(csv_file, run_import):
    path = csv_file(LINE_HEADER, line("1", product="P404", title=""), line("2"))

    run = run_import(path)

    assert "line 2 (order 1): title:" in run.stderr
    assert list(Order.objects.values_list("external_id", flat=True)) == ["2"]
    assert not Product.objects.filter(external_id="P404").exists()


def test_a_row_with_too_many_fields_is_bad(csv_file, run_import):
    path = csv_file(ORDER_HEADER, "1,ann@example.com,2024-01-05T12:00:00+00:00,10,EUR,surprise")

    run = run_import(path)

    assert "line 2 (order 1): the row has 6 fields, the header 5" in run.stderr
    assert not Order.objects.exists()


def test_unknown_columns_are_named_and_ignored(csv_file, run_import):
    path = csv_file(ORDER_HEADER + ",quantitiy", "1,ann@example.com,2024-01-05T12:00Z,10,EUR,3")

    run = run_import(path)

    assert run.status == 0
    assert "Ignored unknown column(s): quantitiy." in run.stderr


# --- Idempotency and statistics -------------------------------------------------------------


def test_running_the_same_file_again_imports_nothing_new(csv_file, run_import):
    path = csv_file(
        LINE_HEADER, line("1"), line("1", product="P2"), line("2", email="b@example.com")
    )
    run_import(path)

    again = run_import(path)

    assert again.status == 0
    assert again.summary("orders imported") == 0
    assert again.summary("orders already present") == 2
    assert again.summary("profiles created") == 0
    assert Order.objects.count() == 2
    assert OrderLine.objects.count() == 3
    assert Profile.objects.count() == 2


def test_stats_are_right_afterwards_also_for_a_customer_with_earlier_orders(
    csv_file, run_import, profile_factory, order_factory
):
    ann = profile_factory(email="ann@example.com")
    order_factory(
        profile=ann,
        external_id="live-1",
        total=Decimal("100.00"),
        placed_at=dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
    )
    profile_stats_refresh(profile_id=ann.pk)
    path = csv_file(
        LINE_HEADER,
        line("old-1", email="ANN@example.com", placed="2023-05-01T08:00:00+00:00", total="10.00"),
        line("old-2", email="ann@example.com", placed="2024-05-01T08:00:00+00:00", total="25.00"),
        line(
            "old-3",
            email="ann@example.com",
            placed="2022-01-01T08:00:00+00:00",
            total="99.00",
            status="cancelled",
        ),
        line("b-1", email="bob@example.com", placed="2024-06-01T08:00:00+00:00", total="7.50"),
    )

    run_import(path, batch_size=1)

    ann.refresh_from_db()
    assert ann.orders_count == 3
    assert ann.total_spent == Decimal("135.00")
    assert ann.average_order_value == Decimal("45.00")
    assert ann.first_order_at == dt.datetime(2023, 5, 1, 8, tzinfo=dt.UTC)
    assert ann.last_order_at == dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    bob = Profile.objects.get(email="bob@example.com")
    assert (bob.orders_count, bob.total_spent, bob.average_order_value) == (
        1,
        Decimal("7.50"),
        Decimal("7.50"),
    )


def test_stats_average_is_rounded_to_cents(csv_file, run_import):
    path = csv_file(
        ORDER_HEADER,
        "1,ann@example.com,2024-01-01T00:00:00+00:00,10.00,EUR",
        "2,ann@example.com,2024-01-02T00:00:00+00:00,10.00,EUR",
        "3,ann@example.com,2024-01-03T00:00:00+00:00,10.01,EUR",
    )

    run_import(path)

    assert Profile.objects.get().average_order_value == Decimal("10.00")


def test_a_rerun_repairs_stats_of_customers_in_the_file(csv_file, run_import):
    path = csv_file(ORDER_HEADER, "1,ann@example.com,2024-01-01T00:00:00+00:00,10.00,EUR")
    run_import(path)
    Profile.objects.update(orders_count=0, total_spent=0)  # as if the first run was killed

    run_import(path)

    assert Profile.objects.get().orders_count == 1


def test_batches_smaller_than_the_file(csv_file, run_import):
    rows = [line(str(n), email=f"c{n % 3}@example.com", product=f"P{n % 4}") for n in range(10)]
    path = csv_file(LINE_HEADER, *rows, line("3", product="P9"))

    run = run_import(path, batch_size=2)

    assert run.summary("orders imported") == 10
    assert "line 12 (order 3): order 3 started at line 5" in run.stderr
    assert Profile.objects.get(email="c0@example.com").orders_count == 4


def test_statistics_are_recomputed_on_the_way_when_many_customers_wait(
    csv_file, run_import, monkeypatch
):
    """Memory stays flat: the customers waiting for their statistics are bounded, also when
    every order is already present (a re-run)."""
    rows = [line(str(n), email=f"c{n}@example.com") for n in range(10)]
    run_import(csv_file(LINE_HEADER, *rows))
    flushes = []
    real = importing_stats.profile_stats_recompute

    def counted(*, profile_ids):
        flushes.append(len(profile_ids))
        real(profile_ids=profile_ids)

    monkeypatch.setattr(importing_writing, "STATS_PENDING", 3)
    for module in (importing_orm, importing_postgres):
        monkeypatch.setattr(module, "profile_stats_recompute", counted)

    run = run_import(csv_file(LINE_HEADER, *rows), batch_size=2)

    assert run.summary("orders already present") == 10
    assert len(flushes) >= 3 and max(flushes) <= 4
    assert sum(flushes) == 10


def test_dry_run_checks_everything_and_writes_nothing(csv_file, run_import):
    path = csv_file(LINE_HEADER, line("1"), line("2", email="nope"))

    run = run_import(path, dry_run=True)

    assert run.status == 3
    assert "Dry run" in run.stdout
    assert run.summary("orders imported") == 1
    assert "line 3 (order 2): email" in run.stderr
    assert not Order.objects.exists() and not Profile.objects.exists()
    assert not Product.objects.exists()


def test_a_batch_colliding_with_a_concurrent_import_is_retried(
    csv_file, run_import, monkeypatch, order_factory
):
    """Another import recorded order 1 after this one looked: the batch goes round again."""
    if connection.vendor == "postgresql":
        pytest.skip(
            "ORM writer only; PostgreSQL's writer skips such orders with ON CONFLICT "
            "(test_two_imports_of_overlapping_files_at_once)"
        )
    order_factory(external_id="1")
    looked = []
    real = importing_orm._orders_present

    def late(order_ids):
        looked.append(order_ids)
        return {} if len(looked) == 1 else real(order_ids)

    monkeypatch.setattr(importing_orm, "_orders_present", late)
    path = csv_file(LINE_HEADER, line("1"), line("2"))

    run = run_import(path)

    assert len(looked) == 2
    assert (run.summary("orders imported"), run.summary("orders already present")) == (1, 1)
    assert Order.objects.count() == 2


def test_a_first_batch_that_collides_with_a_concurrent_import_goes_round_again(
    csv_file, run_import, monkeypatch
):
    """Another import created the same product meanwhile: the whole first batch (with
    whatever it set up) is rolled back, and the retry imports it."""
    real = ProductKeys.resolve
    calls = []

    def colliding(self, orders):
        calls.append(len(orders))
        found = real(self, orders)
        if len(calls) == 1:
            # What the database says when the other import's product is there first.
            product = Product.objects.get()
            Product.objects.create(external_id=product.external_id, title=product.title)
        return found

    monkeypatch.setattr(ProductKeys, "resolve", colliding)
    path = csv_file(LINE_HEADER, line("1"), line("2", email="bo@example.com"))

    run = run_import(path)

    assert calls == [2, 2]
    assert (run.status, run.summary("orders imported")) == (0, 2)
    assert Order.objects.count() == 2 and Product.objects.count() == 1
    assert Profile.objects.get(email="bo@example.com").orders_count == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_order_another_import_records_meanwhile_leaves_no_stray_profile(
    csv_file, monkeypatch, profile_factory
):
    """While this batch runs, another import commits order X for another customer: the
    batch starts over and finds X present, so no profile is made for X's email here."""
    other = profile_factory(email="ea@example.com")
    real = ProductKeys.resolve

    def meanwhile(self, orders):
        if not Order.objects.filter(external_id="X").exists():
            thread = threading.Thread(target=_order_commit, args=("X", other.pk))
            thread.start()
            thread.join()
        return real(self, orders)

    monkeypatch.setattr(ProductKeys, "resolve", meanwhile)
    path = csv_file(LINE_HEADER, line("X", email="eb@example.com"), line("Y"))

    out = StringIO()
    call_command("import_orders", path, stdout=out, stderr=StringIO())

    assert re.search(r"^orders already present +1$", out.getvalue(), re.MULTILINE)
    assert not Profile.objects.filter(email="eb@example.com").exists()
    assert Order.objects.get(external_id="X").profile_id == other.pk
    assert Order.objects.filter(external_id="Y").exists()


def _order_commit(order_id: str, profile_id: int) -> None:
    try:
        Order.objects.create(
            external_id=order_id,
            profile_id=profile_id,
            placed_at=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
            total=Decimal("1.00"),
            currency="EUR",
            shop_total=Decimal("1.00"),
            source=IngestSource.IMPORT,
        )
    finally:
        connection.close()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_imports_of_overlapping_files_at_once(csv_file):
    first = csv_file(
        *[ORDER_HEADER]
        + [f"{n},c{n % 7}@example.com,2024-01-01T00:00:00+00:00,1.00,EUR" for n in range(0, 300)]
    )
    second = csv_file(
        *[ORDER_HEADER]
        + [f"{n},c{n % 7}@example.com,2024-01-01T00:00:00+00:00,1.00,EUR" for n in range(150, 450)]
    )
    errors = []

    def run(path):
        try:
            call_command("import_orders", path, batch_size=20, stdout=StringIO(), stderr=StringIO())
        except Exception as error:  # noqa: BLE001  (reported by the assertion below)
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(path,)) for path in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert Order.objects.count() == 450
    assert Profile.objects.count() == 7
    assert sum(Profile.objects.values_list("orders_count", flat=True)) == 450


# --- The file as a whole --------------------------------------------------------------------


def test_a_missing_file_is_a_command_error(run_import, tmp_path):
    with pytest.raises(CommandError, match="There is no file .*nope.csv"):
        run_import(str(tmp_path / "nope.csv"))


def test_missing_required_columns_are_a_command_error(csv_file, run_import):
    path = csv_file("order_id,email,total", "1,ann@example.com,10")

    with pytest.raises(CommandError, match="Required column.* missing: placed_at, currency"):
        run_import(path)
    assert not Order.objects.exists()


def test_a_file_in_another_encoding_is_a_command_error(csv_file, run_import):
    path = csv_file(
        ORDER_HEADER + ",first_name",
        "1,bjorn@example.com,2024-01-05T12:00:00+00:00,10,EUR,Bjørn",
        encoding="latin-1",
    )

    with pytest.raises(CommandError, match="not utf-8-sig text .*line 2.*nothing was imported"):
        run_import(path)
    assert not Order.objects.exists()


def test_an_empty_file_is_a_command_error(tmp_path, run_import):
    path = tmp_path / "empty.csv"
    path.write_text("")

    with pytest.raises(CommandError, match="empty"):
        run_import(str(path))


def test_an_unknown_timezone_is_a_command_error(csv_file, run_import):
    path = csv_file(ORDER_HEADER)

    with pytest.raises(CommandError, match="not an IANA timezone"):
        run_import(path, timezone="Mars/Olympus")


def test_a_stream_with_a_lone_surrogate_reports_a_bad_row(db):
    # A text stream read with errors="surrogateescape" holds what no driver can encode.
    from personalization.importing import orders_import

    stream = StringIO(
        f"{ORDER_HEADER}\n1,ann@example.com,2024-03-01T10:00:00+00:00,1.00,EUR\n"
        "2\udcff,ann@example.com,2024-03-01T10:00:00+00:00,1.00,EUR\n"
    )
    bad = []

    result = orders_import(stream=stream, on_bad_row=bad.append)

    assert [(row.line, row.reason) for row in bad] == [
        (3, "order_id: Contains a lone surrogate, which is not valid Unicode")
    ]
    assert result.orders_imported == 1
    assert list(Order.objects.values_list("external_id", flat=True)) == ["1"]


# --- One shop currency -------------------------------------------------------------------------


class _Rates(DefaultAdapter):
    asked: list = []

    def exchange_rate(self, *, from_currency, to_currency, at):
        self.asked.append((from_currency, at))
        if from_currency != "USD":
            return super().exchange_rate(
                from_currency=from_currency, to_currency=to_currency, at=at
            )
        return Decimal("0.5")


def test_rows_in_another_currency_are_bad_rows_naming_the_setting(csv_file, run_import):
    path = csv_file(
        LINE_HEADER,
        line("eur-1"),  # line 2
        line("usd-1", currency="USD", product="P1"),  # 3
        line("usd-1", currency="USD", product="P2"),  # 4
        line("eur-2"),  # 5
    )

    run = run_import(path)

    assert run.status == BAD_ROWS
    assert set(Order.objects.values_list("external_id", flat=True)) == {"eur-1", "eur-2"}
    assert run.summary("orders skipped as bad") == 1
    errors = run.stderr.splitlines()
    for number in (3, 4):
        assert any(
            re.match(rf"line {number}\b", e) and "PERSONALIZATION['CURRENCY']" in e for e in errors
        ), errors
    assert Profile.objects.get().total_spent == Decimal("60.00")


def test_rows_in_another_currency_are_converted_by_the_adapter_once_per_day(
    csv_file, run_import, settings
):
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "ADAPTER": _Rates}
    _Rates.asked = []
    path = csv_file(
        LINE_HEADER,
        line("usd-1", currency="USD", total="30.00", placed="2024-03-01T10:00:00+00:00"),
        line("usd-2", currency="USD", total="9.99", placed="2024-03-01T23:00:00+00:00"),
        line("usd-3", currency="USD", total="10.00", placed="2024-03-02T08:00:00+00:00"),
        line("eur-1", total="5.00"),
    )

    run = run_import(path)

    assert run.status == 0
    orders = Order.objects.order_by("external_id")
    assert [(o.external_id, o.total, o.currency, o.shop_total) for o in orders] == [
        ("eur-1", Decimal("5.00"), "EUR", Decimal("5.00")),
        ("usd-1", Decimal("30.00"), "USD", Decimal("15.00")),
        ("usd-2", Decimal("9.99"), "USD", Decimal("5.00")),  # 4.995, half away from zero
        ("usd-3", Decimal("10.00"), "USD", Decimal("5.00")),
    ]
    assert _Rates.asked == [
        ("USD", dt.datetime(2024, 3, 1, tzinfo=dt.UTC)),
        ("USD", dt.datetime(2024, 3, 2, tzinfo=dt.UTC)),
    ]
    assert Profile.objects.get().total_spent == Decimal("30.00")


# --- Traits ---------------------------------------------------------------------------------


def test_trait_columns_are_recorded_as_the_shops_traits_of_the_customer(
    csv_file, run_import, profile_factory
):
    from personalization.models import Trait
    from personalization.traits import trait_remove, traits_set

    bea = profile_factory(email="bea@example.com")
    traits_set(profile=bea, values={"tier": "bronze"}, source="inferred", confidence=0.9)
    trait_remove(profile=bea, key="shoe_size", by="preference_centre")
    cy = profile_factory(email="cy@example.com")
    traits_set(profile=cy, values={"tier": "platinum"}, source="shop")
    path = csv_file(
        ORDER_HEADER + ",Trait.tier,trait.shoe_size",
        "1,ann@example.com,2024-01-05T12:00Z,10,EUR,silver,38",
        "2,ann@example.com,2024-02-05T12:00Z,10,EUR,gold,",  # later: gold; no size: kept
        "3,bea@example.com,2024-01-05T12:00Z,10,EUR,gold,40",
        "4,cy@example.com,2024-01-05T12:00Z,10,EUR,gold,41",
    )

    run = run_import(path)

    assert run.status == 0 and run.stderr == ""
    assert run.summary("traits recorded") == 4
    assert {
        (t.profile.email, t.key): (t.value, t.source, t.confidence)
        for t in Trait.objects.select_related("profile")
    } == {
        ("ann@example.com", "tier"): ("gold", "shop", None),
        ("ann@example.com", "shoe_size"): ("38", "shop", None),
        ("bea@example.com", "tier"): ("gold", "shop", None),  # the shop's word beats a guess
        ("cy@example.com", "tier"): ("platinum", "shop", None),  # history: what is, stays
        ("cy@example.com", "shoe_size"): ("41", "shop", None),
    }  # bea removed her shoe size: the file does not bring it back
    assert run_import(path).summary("traits recorded") == 0  # the same again: nothing new


def test_a_bad_trait_value_is_a_bad_row_and_a_bad_trait_column_a_bad_file(csv_file, run_import):
    from personalization.models import Trait

    run = run_import(
        csv_file(
            ORDER_HEADER + ",trait.note", "1,ann@example.com,2024-01-05T12:00Z,10,EUR," + "x" * 300
        )
    )
    assert run.status == BAD_ROWS
    assert "trait.note: A trait's text has at most 255 characters" in run.stderr
    assert not Trait.objects.exists()

    with pytest.raises(CommandError, match="trait column is trait.<key>"):
        run_import(
            csv_file(
                ORDER_HEADER + ",trait.shoe size", "1,a@example.com,2024-01-05T12:00Z,1,EUR,38"
            )
        )
