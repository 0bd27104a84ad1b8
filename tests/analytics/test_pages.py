"""``/admin/reports/``: staff only, behind the admin's login; every report renders; every
table's CSV parses and says exactly what the page's table says; bad input gets a friendly
answer, never a 500; the top line is on the admin index; no inline script anywhere."""

from __future__ import annotations

import csv
import io

import pytest
from django.contrib.auth import get_user_model

from analytics.reports import report_entries
from tests.analytics.html_tables import parse

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

RANGE = "from=2026-11-09&to=2026-11-15"
SLUGS = [e.slug for e in report_entries()]


def _url(slug: str) -> str:
    return "/admin/reports/" if slug == "overview" else f"/admin/reports/{slug}/"


@pytest.fixture
def staff_client(client):
    user = get_user_model().objects.create_user("clerk", "clerk@example.com", "pw-Secret-123")
    user.is_staff = True
    user.save()
    client.force_login(user)
    return client


def test_anonymous_visitors_are_sent_to_the_admin_login(client):
    for slug in SLUGS:
        response = client.get(_url(slug))
        assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


def test_a_logged_in_non_staff_user_is_refused(client):
    user = get_user_model().objects.create_user("buyer", "b@example.com", "pw-Secret-123")
    client.force_login(user)
    response = client.get("/admin/reports/time/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    assert client.get("/admin/reports/time/?format=csv&table=by_day").status_code == 302


@pytest.mark.parametrize("slug", SLUGS)
def test_every_table_csv_parses_and_matches_the_page(staff_client, week, slug):
    page = staff_client.get(f"{_url(slug)}?{RANGE}&currency=USD")
    assert page.status_code == 200
    html = parse(page.content.decode())
    assert html.tables, "a report without tables"
    for table_id, rows in html.tables.items():
        response = staff_client.get(
            f"{_url(slug)}?{RANGE}&currency=USD&format=csv&table={table_id}"
        )
        assert response.status_code == 200
        assert response["Content-Type"] == "text/csv; charset=utf-8"
        assert "attachment" in response["Content-Disposition"]
        parsed = list(csv.reader(io.StringIO(response.content.decode())))
        header, body = parsed[0], parsed[1:]
        assert header == rows[0], table_id
        page_body = rows[1:]
        if not body:  # an empty table says so in one cell on the page
            assert page_body == [["Nothing in this period."]]
        else:
            assert body == page_body, table_id


def test_csv_of_the_by_day_table_has_the_known_figures(staff_client, week):
    response = staff_client.get(f"/admin/reports/time/?{RANGE}&format=csv&table=by_day")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [(r["Day"], r["Revenue (USD)"]) for r in rows][1:3] == [
        ("2026-11-10", "10.00"),
        ("2026-11-11", "60.00"),
    ]


def test_bad_input_is_answered_in_words(staff_client):
    page = staff_client.get("/admin/reports/time/?from=2026-13-01&to=x")
    assert page.status_code == 400 and "Give both dates as YYYY-MM-DD." in page.content.decode()
    page = staff_client.get("/admin/reports/time/?from=2026-11-15&to=2026-11-01")
    assert page.status_code == 400 and "The first date is after the last." in page.content.decode()
    assert staff_client.get("/admin/reports/time/?days=12").status_code == 400
    csv_bad = staff_client.get("/admin/reports/time/?format=csv&table=nope")
    assert csv_bad.status_code == 400 and "by_day" in csv_bad.content.decode()
    assert staff_client.get("/admin/reports/time/?format=xml").status_code == 400
    assert staff_client.get("/admin/reports/nope/").status_code == 404
    assert staff_client.get("/admin/reports/time/?currency=<b>x").status_code == 200
    assert staff_client.get("/admin/reports/time/?from=2026-11-09%00&to=x").status_code == 400


def test_no_inline_script_or_event_handler_on_any_report(staff_client, week):
    """A Content-Security-Policy of script-src 'self' must not break a chart."""
    for slug in SLUGS:
        html = parse(staff_client.get(f"{_url(slug)}?{RANGE}").content.decode())
        assert html.inline_scripts == [] and html.handlers == [], slug


def test_the_admin_index_shows_the_top_line(staff_client, week):
    page = staff_client.get("/admin/").content.decode()
    assert 'data-testid="top-line"' in page and "Today so far" in page
    assert "Open alerts" in page and "/admin/reports/" in page


def test_the_period_and_time_zone_are_named(staff_client, week, settings):
    page = staff_client.get(f"/admin/reports/time/?{RANGE}").content.decode()
    assert "2026-11-09 – 2026-11-15 (7 days), against 2026-11-02 – 2026-11-08" in page
    assert "Times in Asia/Shanghai" in page
