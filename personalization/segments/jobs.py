"""The jobs of segments: the realtime update and the scheduled refreshes run as jobs of the
outbox, so a broker outage delays them and never loses them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from django.db import OperationalError, connection, transaction
from django.db.models import BooleanField, Q
from django.db.models.expressions import RawSQL

from ..jobs import job_enqueue, job_handler
from ..models import Job, Profile
from .dependencies import segments_depend_on
from .membership import segments_refresh, segments_update_for_profiles
from .selection import segments_select

SEGMENTS_UPDATE_JOB = "personalization.segments_update"
SEGMENTS_REFRESH_JOB = "personalization.segments_refresh"


def segments_update_enqueue(
    *, profile_ids: Iterable[int], changes: Mapping[int, Iterable[str]] | None = None
) -> Job | None:
    """Record the job that re-evaluates these profiles' segments (after their data changed).

    With ``changes`` (what changed per profile, as ``profile_changed`` says), only profiles
    with a change some segment depends on are re-evaluated (see ``segments_depend_on``): a
    product view moves nobody unless a rule segment reads views.
    """
    ids = set(profile_ids)
    if changes is not None:
        depends = segments_depend_on()
        ids = {pid for pid in ids if depends.intersection(changes.get(pid, ()))}
    ids = sorted(ids)
    if not ids:
        return None
    with transaction.atomic():
        return job_enqueue(task=SEGMENTS_UPDATE_JOB, args={"profile_ids": ids})


def segments_update_jobs_forget(*, profile_ids: Iterable[int]) -> int:
    """Take these profiles' ids out of the segment update jobs that name them (erasure).

    Whatever their state: a pending job would skip a deleted profile anyway, but no row of
    the app may keep the id of an erased person. How many jobs were changed.
    """
    ids = sorted(set(profile_ids))
    if not ids:
        return 0
    jobs = Job.objects.filter(task=SEGMENTS_UPDATE_JOB)
    if connection.vendor == "postgresql":
        naming = Q()
        for pk in ids:
            naming |= Q(args__profile_ids__contains=[pk])
        jobs = jobs.filter(naming)
    elif connection.vendor == "sqlite":
        table = connection.ops.quote_name(Job._meta.db_table)
        placeholders = ", ".join(["%s"] * len(ids))
        names = RawSQL(
            f"EXISTS (SELECT 1 FROM json_each({table}.args, '$.profile_ids') "
            f"WHERE value IN ({placeholders}))",
            ids,
            output_field=BooleanField(),
        )
        jobs = jobs.alias(names_them=names).filter(names_them=True)
    forget = set(ids)
    changed = 0
    # Only the jobs that name them, read one at a time: a few, among many.
    for job in jobs.only("pk", "args").order_by("pk").iterator():
        kept = [pk for pk in job.args.get("profile_ids", []) if pk not in forget]
        if len(kept) != len(job.args.get("profile_ids", [])):
            Job.objects.filter(pk=job.pk).update(args={**job.args, "profile_ids": kept})
            changed += 1
    return changed


# A lock wait that timed out or a deadlock victim is worth another try; the update reads the
# current data every time, so a repeated run is harmless.
@job_handler(SEGMENTS_UPDATE_JOB, retry_for=(OperationalError,))
def segments_update_run(*, profile_ids: list[int]) -> int:
    """Re-evaluate every segment for these profiles; how many memberships changed."""
    existing = Profile.objects.filter(pk__in=profile_ids).values_list("pk", flat=True)
    changes = segments_update_for_profiles(profile_ids=list(existing))
    return sum(len(entered) + len(exited) for entered, exited in changes.values())


def segments_refresh_enqueue(*, slugs: list[str]) -> Job:
    """Record the job that refreshes these segments for everyone (the admin's action)."""
    with transaction.atomic():
        return job_enqueue(task=SEGMENTS_REFRESH_JOB, args={"slugs": sorted(slugs)})


@job_handler(SEGMENTS_REFRESH_JOB, retry_for=(OperationalError,))
def segments_refresh_run(*, slugs: list[str]) -> int:
    """Refresh the segments still there of these; how many memberships changed."""
    existing = segments_select().filter(slug__in=slugs)
    results = segments_refresh(segments=existing)
    return sum(result.entered + result.exited for result in results)
