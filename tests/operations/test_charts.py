"""Server-side SVG charts: well-formed, escaped, scaled to a round top, links and gaps."""

import re
import xml.etree.ElementTree as ET

import pytest
from django.utils.safestring import SafeString

from operations.charts import Point, bar_chart, line_chart, nice_ceiling

SVG = "{http://www.w3.org/2000/svg}"


def parsed(svg: str) -> ET.Element:
    return ET.fromstring(str(svg))  # noqa: S314 - our own output, parsed to prove it is XML


@pytest.mark.parametrize(
    ("value", "top"), [(0, 1), (-3, 1), (0.3, 0.5), (1, 1), (3, 5), (7, 10), (12, 20), (100, 100)]
)
def test_the_axis_top_is_a_round_number_at_or_above_the_largest_value(value, top):
    assert nice_ceiling(value) == top


def test_a_bar_chart_draws_one_bar_per_non_zero_day_scaled_to_its_top():
    points = [Point("03-09", 0), Point("03-10", 2), Point("03-11", 4)]

    svg = bar_chart(points, title="Bonuses per day")

    assert isinstance(svg, SafeString)
    root = parsed(svg)
    assert root.tag == f"{SVG}svg"
    assert root.find(f"{SVG}title").text == "Bonuses per day"
    bars = [rect for rect in root.iter(f"{SVG}rect") if rect.get("class") == "bd-bar"]
    assert [bar.get("data-value") for bar in bars] == ["2", "4"]
    heights = [float(bar.get("height")) for bar in bars]
    assert heights[1] == pytest.approx(2 * heights[0], rel=0.01)
    ticks = [text.text for text in root.iter(f"{SVG}text") if text.get("class") == "bd-tick"]
    assert ticks[:3] == ["5", "2.5", "0"]  # 4 rounds up to 5
    assert ticks[3:] == ["03-09", "03-10", "03-11"]
    assert "Nothing in this period yet" not in svg


def test_every_day_has_a_tooltip_and_its_link_even_an_empty_one():
    points = [Point("03-10", 0, "10 March: 0 trades", "/admin/x/?day=10"), Point("03-11", 1)]

    root = parsed(bar_chart(points, title="Trades"))

    links = list(root.iter(f"{SVG}a"))
    assert [a.get("href") for a in links] == ["/admin/x/?day=10"]
    titles = [t.text for t in root.iter(f"{SVG}title")]
    assert "10 March: 0 trades" in titles
    assert "03-11: 1" in titles


def test_labels_tooltips_and_links_are_escaped():
    points = [Point("<b>", 1, '"><script>alert(1)</script>', "/admin/?a=1&b=<2>")]

    svg = bar_chart(points, title="<script>x</script>")

    assert "<script>" not in svg and "<b>" not in svg
    assert "&lt;script&gt;" in svg
    assert 'href="/admin/?a=1&amp;b=&lt;2&gt;"' in svg
    parsed(svg)


def test_a_period_with_nothing_says_so_and_draws_no_bar():
    svg = bar_chart([Point("03-10", 0), Point("03-11", 0)], title="Calls")

    assert "Nothing in this period yet" in svg
    assert 'class="bd-bar"' not in svg
    assert parsed(bar_chart([], title="Calls")).tag == f"{SVG}svg"


def test_a_line_chart_breaks_where_a_day_has_no_value_and_keeps_a_fixed_top():
    points = [
        Point("1", 50),
        Point("2", 100),
        Point("3", None),
        Point("4", 75),
        Point("5", 25),
        Point("6", None),
        Point("7", 0),
    ]

    svg = line_chart(points, title="Served at once", unit="%", top=100)

    root = parsed(svg)
    lines = [el.get("points") for el in root.iter(f"{SVG}polyline")]
    assert len(lines) == 2  # 1-2 and 4-5; day 7 stands alone
    assert all(len(line.split()) == 2 for line in lines)
    dots = [el.get("data-value") for el in root.iter(f"{SVG}circle")]
    assert dots == ["50", "100", "75", "25", "0"]
    assert re.search(r">100%</text>", svg) and re.search(r">50%</text>", svg)


def test_a_value_above_the_fixed_top_stays_inside_the_chart():
    root = parsed(line_chart([Point("a", 150), Point("b", 50)], title="x", top=100))

    ys = [float(dot.get("cy")) for dot in root.iter(f"{SVG}circle")]
    assert min(ys) >= 0


def test_a_line_chart_with_no_values_says_so():
    svg = line_chart([Point("1", None), Point("2", None)], title="x", empty="No activations")

    assert "No activations" in svg
    assert "polyline" not in svg and "circle" not in svg
