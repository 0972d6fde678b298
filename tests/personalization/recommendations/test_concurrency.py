"""Builds beside each other and beside readers, on real PostgreSQL."""

import threading

import pytest

from personalization.models import BuildStatus, ProductNeighbour, RecommendationModel
from personalization.recommendations import recommendations_build
from tests.concurrency import run_concurrently

from .shop import NOW, order

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
WAIT = 10


@pytest.fixture
def shop(product_factory):
    a, b, c = (product_factory(title=title) for title in ("A", "B", "C"))
    for _ in range(3):
        order(a, b)
    for _ in range(2):
        order(a, c)
    return a, b, c


def current_rows():
    return sorted(
        ProductNeighbour.objects.current().values_list("product", "neighbour", "co_purchases")
    )


def test_a_build_that_finds_another_running_skips(shop):
    locked, finished = threading.Event(), threading.Event()
    reports = {}

    def hold_the_lock(progress):
        if progress.step == "lock":
            locked.set()
            finished.wait(WAIT)  # until the second build has come and gone

    def first():
        reports["first"] = recommendations_build(now=NOW, progress=hold_the_lock)

    def second():
        locked.wait(WAIT)
        try:
            reports["second"] = recommendations_build(now=NOW)
        finally:
            finished.set()

    run_concurrently([first, second])

    assert reports["second"].skipped and reports["second"].build_id is None
    assert not reports["first"].skipped
    assert RecommendationModel.objects.get().pk == reports["first"].build_id
    assert len(current_rows()) == 4


def test_builds_started_together_leave_one_complete_current_model(shop):
    reports = []
    run_concurrently([lambda: reports.append(recommendations_build(now=NOW))] * 4)

    built = [report for report in reports if not report.skipped]
    assert built  # at least one got the lock; the others skipped or ran after it
    current = RecommendationModel.objects.current().get()
    assert current.pk == max(report.build_id for report in built)
    assert RecommendationModel.objects.filter(status=BuildStatus.COMPLETE).count() == 1
    assert set(ProductNeighbour.objects.values_list("build", flat=True)) == {current.pk}
    assert len(current_rows()) == 4


def test_readers_see_the_old_model_until_the_new_one_is_committed(shop):
    a, b, c = shop
    recommendations_build(now=NOW)
    before = current_rows()
    for _ in range(5):
        order(b, c)  # the next build will differ
    reached, release = {}, {}
    for step in ("count", "clean"):
        reached[step], release[step] = threading.Event(), threading.Event()
    seen = {}

    def pause(progress):
        if progress.step in reached:
            reached[progress.step].set()
            release[progress.step].wait(WAIT)

    def build():
        recommendations_build(now=NOW, progress=pause)

    def read():
        for step in ("count", "clean"):
            reached[step].wait(WAIT)
            # Another connection, while the build's rows are written and then switched.
            seen[step] = current_rows()
            release[step].set()

    run_concurrently([build, read])

    assert seen == {"count": before, "clean": before}
    after = current_rows()
    assert after != before
    assert (b.pk, c.pk, 5) in after
