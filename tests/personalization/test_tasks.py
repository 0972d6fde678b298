from decimal import Decimal

import pytest
from django_celery_beat.models import PeriodicTask

from personalization.models import Profile
from personalization.schedules import SCHEDULES, schedules_register
from personalization.tasks import profile_stats_rebuild_task
from tests.celery_worker import running_worker, worker_app
from tests.conftest import REDIS_URL


@pytest.mark.django_db
def test_schedules_are_registered_by_migrate_and_never_duplicated():
    assert set(PeriodicTask.objects.values_list("name", flat=True)) >= set(SCHEDULES)
    schedules_register()
    schedules_register()
    assert PeriodicTask.objects.filter(name__in=SCHEDULES).count() == len(SCHEDULES)


@pytest.mark.django_db
def test_the_nightly_rebuild_task_repairs_profile_stats(order_factory):
    order = order_factory(total=Decimal("40.00"))
    Profile.objects.update(orders_count=0, total_spent=0)
    profile_stats_rebuild_task.delay()  # eager in tests
    profile = Profile.objects.get(pk=order.profile_id)
    assert (profile.orders_count, profile.total_spent) == (1, Decimal("40.00"))


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_runs_the_task_through_the_redis_broker(order_factory):
    app = worker_app(result_backend=REDIS_URL, task_ignore_result=False)
    order = order_factory(total=Decimal("15.00"))
    Profile.objects.update(orders_count=0, total_spent=0)

    with running_worker(app):
        result = app.tasks["personalization.profile_stats_rebuild"].delay()
        assert result.get(timeout=30) == 1

    profile = Profile.objects.get(pk=order.profile_id)
    assert (profile.orders_count, profile.total_spent) == (1, Decimal("15.00"))
