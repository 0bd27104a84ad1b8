"""The owner opens the reports in real Chromium and sees the charts *drawn*: every chart has
an ECharts instance with series whose data are the table's numbers, and pixels on its canvas.
The pages are served under the shop's strict Content-Security-Policy (``script-src 'self'``),
so an inline script or a CDN would leave the charts blank and fail."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from tests.analytics.conftest import shop_zone, week  # noqa: F401 - the hand-built week

pytestmark = [
    pytest.mark.browser,
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
]

RANGE = "from=2026-11-09&to=2026-11-15"

# For each chart on the page: its series count, the sum of its numbers, and how many canvas
# pixels are not blank.
DRAWN = """
() => Array.from(document.querySelectorAll('[data-chart]')).map((el) => {
  const chart = echarts.getInstanceByDom(el);
  const canvas = el.querySelector('canvas');
  let painted = 0;
  if (canvas) {
    const ctx = canvas.getContext('2d');
    const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
    for (let i = 3; i < data.length; i += 4) if (data[i] !== 0) painted++;
  }
  const series = chart ? chart.getOption().series : [];
  const total = series.reduce((sum, s) => sum + (s.data || []).reduce((a, d) => {
    const v = Array.isArray(d) ? d[2] : (d && typeof d === 'object' ? d.value : d);
    return a + (typeof v === 'number' ? v : 0);
  }, 0), 0);
  return {id: el.dataset.chart, series: series.length, total: total, painted: painted};
})
"""


def test_the_owner_sees_every_chart_drawn(live_server, new_context, shot, week):  # noqa: F811
    get_user_model().objects.create_superuser("owner", "owner@example.com", "pw-Secret-123")
    page = new_context("desktop").new_page()
    csp_errors: list[str] = []
    page.on(
        "console", lambda m: csp_errors.append(m.text) if "Content Security" in m.text else None
    )
    page.goto(f"{live_server.url}/admin/reports/time/?{RANGE}")
    page.get_by_label("Username").fill("owner")
    page.get_by_label("Password").fill("pw-Secret-123")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_test_id("reports")).to_be_visible()

    drawn_ids = []
    for slug in ("time", "buyers", "products", "channels", "risk"):
        response = page.goto(f"{live_server.url}/admin/reports/{slug}/?{RANGE}")
        script_src = response.headers["content-security-policy"].split("script-src")[1]
        assert script_src.split(";")[0].strip() == "'self'"
        expect(page.locator("[data-chart][data-drawn=true]").first).to_be_visible()
        charts = page.evaluate(DRAWN)
        assert charts, slug
        for chart in charts:
            assert chart["series"] >= 1, chart
            assert chart["painted"] > 500, chart  # pixels drawn, not an empty canvas
        drawn_ids += [c["id"] for c in charts]
        shot(page, f"report-{slug}")
        if slug == "time":
            by_id = {c["id"]: c for c in charts}
            # The heat map's cells add up to the week's 5 paid orders; the revenue bars to
            # 105.00 + the previous week's 10.00, plus the 6 orders of the line.
            assert by_id["heatmap_chart"]["total"] == 5
            assert by_id["by_day_chart"]["total"] == pytest.approx(105 + 10 + 6)
            expect(page.get_by_test_id("words")).to_contain_text("Peak: Wednesdays 00:00–01:00")
    assert {"by_day_chart", "heatmap_chart", "funnel_chart", "sources_chart"} <= set(drawn_ids)
    assert csp_errors == []
