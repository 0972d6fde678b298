"""CSV the app writes cannot run as a formula in the marketer's spreadsheet."""

import csv
import datetime as dt
import io

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from hypothesis import given
from hypothesis import strategies as st

from personalization.models import Segment, SegmentMembership
from personalization.privacy.csv_safety import FORMULA_TRIGGERS, csv_lines, csv_safe
from personalization.segments.export import segment_members_csv

NOW = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("value", "safe"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("+46 70 123", "'+46 70 123"),
        ("-2+3", "'-2+3"),
        ("\t=1+1", "'\t=1+1"),
        ("\r=1+1", "'\r=1+1"),
        ("Ann", "Ann"),
        ("a=b", "a=b"),
        ("", ""),
        (-5, -5),
        (None, None),
    ],
)
def test_a_cell_a_spreadsheet_would_run_gets_a_leading_quote(value, safe):
    assert csv_safe(value) == safe


@given(st.text())
def test_no_text_comes_out_of_csv_safe_as_a_formula(text):
    safe = csv_safe(text)
    assert not safe.startswith(FORMULA_TRIGGERS)
    assert safe == text or safe == "'" + text


def test_csv_lines_make_every_cell_safe_the_header_too():
    lines = list(csv_lines(header=["=head"], rows=[["=1+1", "ok", 3]]))
    assert list(csv.reader(io.StringIO("".join(lines)))) == [["'=head"], ["'=1+1", "ok", "3"]]


# --- The segment members export --------------------------------------------------------------


@pytest.fixture
def members(db, profile_factory):
    segment = Segment.objects.get(slug="loyal")
    rows = [
        ("mallory@example.com", '=HYPERLINK("http://x")', "@SUM(A1)", "SE", NOW),
        ("ann@example.com", "Ann", "Lee", "DE", NOW + dt.timedelta(minutes=1)),
    ]
    for email, first, last, country, entered_at in rows:
        SegmentMembership.objects.create(
            segment=segment,
            profile=profile_factory(email=email, first_name=first, last_name=last, country=country),
            entered_at=entered_at,
        )
    gone = profile_factory(email="gone@example.com")
    SegmentMembership.objects.create(
        segment=segment, profile=gone, entered_at=NOW, exited_at=NOW + dt.timedelta(days=1)
    )
    return segment


def _export(admin_client, ids):
    return admin_client.post(
        reverse("admin:personalization_segment_changelist"),
        {"action": "export_members_csv", "_selected_action": ids},
        follow=True,
    )


def test_the_admin_streams_the_current_members_as_safe_csv(admin_client, members):
    response = _export(admin_client, [members.pk])

    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="segment-loyal-')
    text = b"".join(response.streaming_content).decode()
    assert list(csv.reader(io.StringIO(text))) == [
        ["email", "first name", "last name", "country", "entered"],
        ["mallory@example.com", '\'=HYPERLINK("http://x")', "'@SUM(A1)", "SE", NOW.isoformat()],
        ["ann@example.com", "Ann", "Lee", "DE", (NOW + dt.timedelta(minutes=1)).isoformat()],
    ]


def test_the_admin_exports_one_segment_at_a_time(admin_client, members):
    other = Segment.objects.get(slug="lapsed")
    response = _export(admin_client, [members.pk, other.pk])
    assert not response.streaming
    assert "Select exactly one segment to export its members." in [
        str(m) for m in response.context["messages"]
    ]


def test_members_are_read_while_the_lines_are_sent_not_before(members):
    with CaptureQueriesContext(connection) as before_reading:
        lines = segment_members_csv(segment=members)
    assert len(before_reading) == 0
    assert len(list(lines)) == 3
