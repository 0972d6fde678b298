"""The command, the task, the Beat schedule, the settings' checks and the admin pages."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse
from django_celery_beat.models import PeriodicTask

from personalization.checks import check_setting_types
from personalization.models import RecommendationModel
from personalization.schedules import SCHEDULES, schedules_register
from personalization.tasks import recommendations_build_task

from .shop import order

pytestmark = pytest.mark.django_db
SCHEDULE = "personalization: build recommendations"


@pytest.fixture
def pair(product_factory):
    a = product_factory(title="Espresso beans")
    b = product_factory(title="Milk frother")
    for _ in range(3):
        order(a, b)
    return a, b


def test_the_command_shows_its_steps_and_a_summary(pair):
    out, err = StringIO(), StringIO()
    call_command("build_recommendations", stdout=out, stderr=err)

    build = RecommendationModel.objects.current().get()
    assert out.getvalue().startswith(
        f"Built recommendation model #{build.pk} in "
    ) and out.getvalue().endswith(
        ": 2 product(s) with 2 neighbour(s); 0 earlier model(s) deleted.\n"
    )
    lines = err.getvalue().splitlines()
    assert [line.split("] ")[1].split(" (")[0] for line in lines] == [
        "1/4 lock taken",
        "2/4 co-purchases and co-views counted, top neighbours stored",
        "3/4 new model made current",
        "4/4 earlier models deleted",
    ]
    assert lines[-1].startswith("[" + "#" * 20 + "]")


def test_the_command_is_quiet_at_verbosity_0(pair):
    err = StringIO()
    call_command("build_recommendations", verbosity=0, stdout=StringIO(), stderr=err)
    assert err.getvalue() == ""


def test_the_task_builds_and_returns_the_build(pair):
    build_id = recommendations_build_task()
    assert RecommendationModel.objects.current().get().pk == build_id


def test_the_schedule_is_registered_daily_from_the_setting():
    task = PeriodicTask.objects.get(name=SCHEDULE)  # registered by migrate
    assert task.task == "personalization.recommendations_build"
    crontab = task.crontab
    assert (crontab.minute, crontab.hour, crontab.day_of_week) == ("23", "4", "*")


def test_the_schedule_setting_sets_the_crontab_or_switches_it_off(settings):
    PeriodicTask.objects.filter(name__in=SCHEDULES).delete()
    settings.PERSONALIZATION = {
        **settings.PERSONALIZATION,
        "RECOMMENDATION_BUILD_SCHEDULE": {"minute": "5", "hour": "*/6"},
    }
    schedules_register()
    crontab = PeriodicTask.objects.get(name=SCHEDULE).crontab
    assert (crontab.minute, crontab.hour, crontab.day_of_month) == ("5", "*/6", "*")

    PeriodicTask.objects.filter(name__in=SCHEDULES).delete()
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "RECOMMENDATION_BUILD_SCHEDULE": None}
    assert schedules_register() == len(SCHEDULES) - 1
    assert not PeriodicTask.objects.filter(name=SCHEDULE).exists()


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("RECOMMENDATION_NEIGHBOURS", 0),
        ("RECOMMENDATION_CO_VIEW_WEIGHT", -0.5),
        ("RECOMMENDATION_CO_VIEW_WEIGHT", "0.25"),
        ("RECOMMENDATION_CO_VIEW_DAYS", 1.5),
        ("RECOMMENDATION_MIN_SUPPORT", True),
        ("RECOMMENDATION_BUILD_SCHEDULE", {"minutes": "5"}),
        ("RECOMMENDATION_BUILD_SCHEDULE", {"minute": 5}),
        ("RECOMMENDATION_BUILD_SCHEDULE", "daily"),
    ],
)
def test_a_wrong_setting_is_a_check_error(settings, key, value):
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, key: value}
    errors = check_setting_types()
    assert [error.id for error in errors] == ["personalization.E006"]
    assert key in errors[0].msg


def test_the_product_page_shows_its_neighbours_with_their_scores(admin_client, pair):
    a, b = pair
    url = reverse("admin:personalization_product_change", args=[a.pk])
    page = admin_client.get(url).content.decode()
    assert "No neighbours in the current model" in page

    call_command("build_recommendations", stdout=StringIO(), stderr=StringIO())

    page = admin_client.get(url).content.decode()
    assert "Neighbours in the current recommendation model" in page
    link = reverse("admin:personalization_product_change", args=[b.pk])
    assert f'<td>1</td><td><a href="{link}">Milk frother</a></td><td>1.000</td><td>3</td>' in page


def test_the_builds_are_listed_read_only(admin_client, pair):
    call_command("build_recommendations", stdout=StringIO(), stderr=StringIO())
    build = RecommendationModel.objects.get()

    listing = admin_client.get(reverse("admin:personalization_recommendationmodel_changelist"))
    assert listing.status_code == 200
    assert "complete" in listing.content.decode()
    page = admin_client.get(
        reverse("admin:personalization_recommendationmodel_change", args=[build.pk])
    )
    assert page.status_code == 200
    assert "min_support" in page.content.decode()
    add = admin_client.get(reverse("admin:personalization_recommendationmodel_add"))
    assert add.status_code == 403


def test_the_command_says_when_another_build_is_running(pair, monkeypatch):
    from personalization.recommendations import build

    monkeypatch.setattr(build, "_lock_taken", lambda: False)
    out = StringIO()
    call_command("build_recommendations", stdout=out, stderr=StringIO())
    assert out.getvalue().startswith("Another build is running; this one skipped.")
    assert not RecommendationModel.objects.exists()


def test_the_product_page_says_what_interval_customers_taught_the_model(
    admin_client, product_factory, settings
):
    import datetime as dt

    from personalization.models import Order

    settings.PERSONALIZATION = {
        **settings.PERSONALIZATION,
        "RECOMMENDATION_INTERVAL_MIN_REPEATS": 2,
    }
    tea = product_factory(title="Sencha")
    url = reverse("admin:personalization_product_change", args=[tea.pk])
    for gap in (20, 24):
        first, again = order(tea), order(tea)
        Order.objects.filter(pk=again.pk).update(
            profile=first.profile, placed_at=first.placed_at + dt.timedelta(days=gap)
        )
    assert "Not learned: too few customers bought it again" in admin_client.get(url).text

    call_command("build_recommendations", stdout=StringIO(), stderr=StringIO())

    assert "22 days: the median of 2 repeat purchases." in admin_client.get(url).text
