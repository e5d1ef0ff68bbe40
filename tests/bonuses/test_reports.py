"""The four reports: their numbers, their API, their CSV and XLSX files, who may read them."""

import csv
import io
from datetime import timedelta
from decimal import Decimal

import openpyxl
import pytest
from django.utils import timezone

from accounts.roles import Role
from bonuses.models import Bonus
from bonuses.reports import ReportFilters, report_cancellations, report_summary
from tests.bonuses.test_api_bonuses import CALLERS, caller, expected_status, make_bonus

pytestmark = pytest.mark.django_db

READERS = [Role.SUPER_ADMIN.value, Role.READ_ONLY.value]


@pytest.fixture
def client_as(api, make_user, as_user):
    return lambda kind: caller(kind, api=api, make_user=make_user, as_user=as_user)


@pytest.fixture
def book(campaign_factory):
    """Two campaigns with bonuses in every state; money chosen so each total is distinct."""
    welcome = campaign_factory(name="Welcome", bonus_type="A")
    convert = campaign_factory(name="Convert", bonus_type="C")
    make_bonus(welcome, login=1, amount="500.00", credit_remaining="450.00")  # 50 withdrawn
    make_bonus(welcome, login=2, amount="100.00", credit_remaining="100.00")
    make_bonus(
        welcome,
        login=3,
        amount="300.00",
        credit_remaining="0",
        status=Bonus.Status.CANCELLED,
        cancel_reason="drawdown",
        ended_at=timezone.now(),
        leverage_restored_at=timezone.now(),
    )
    make_bonus(welcome, login=4, amount="80.00", credit_remaining="0", status=Bonus.Status.FAILED)
    make_bonus(
        convert,
        login=5,
        amount="200.00",
        credit_remaining="150.00",
        converted_amount="50.00",
        lots_traded="5.00",
    )
    make_bonus(
        convert,
        login=6,
        amount="100.00",
        credit_remaining="0",
        converted_amount="100.00",
        lots_traded="10.00",
        status=Bonus.Status.CONVERTED,
    )
    make_bonus(
        convert,
        login=7,
        amount="60.00",
        credit_remaining="0",
        converted_amount="20.00",
        status=Bonus.Status.CANCELLED,
        cancel_reason="drawdown",
        ended_at=timezone.now(),
    )
    make_bonus(
        convert,
        login=8,
        amount="40.00",
        credit_remaining="0",
        status=Bonus.Status.EXPIRED,
        ended_at=timezone.now(),
    )
    return {"welcome": welcome, "convert": convert}


def by_campaign(rows):
    return {row["name"]: row for row in rows}


def test_the_summary_counts_each_status_and_sums_the_money_per_campaign(book):
    rows = by_campaign(report_summary())
    welcome = rows["Welcome"]
    assert welcome["campaign_id"] == book["welcome"].pk
    assert (welcome["granted"], welcome["active"], welcome["cancelled"]) == (3, 2, 1)
    assert (welcome["converted"], welcome["expired"], welcome["failed"]) == (0, 0, 1)
    assert welcome["total_credit"] == Decimal("900.00")  # the failed 80.00 was never granted
    assert welcome["total_converted"] == Decimal("0.00")
    assert welcome["total_removed"] == Decimal("350.00")  # 50 withdrawn + 300 cancelled
    convert = rows["Convert"]
    assert (convert["granted"], convert["active"], convert["converted"]) == (4, 1, 1)
    assert (convert["cancelled"], convert["expired"]) == (1, 1)
    assert convert["total_credit"] == Decimal("400.00")
    assert convert["total_converted"] == Decimal("170.00")
    assert convert["total_removed"] == Decimal("80.00")  # 40 of the cancelled + 40 expired


def test_the_summary_window_counts_only_bonuses_created_in_it(book):
    later = timezone.now() + timedelta(days=1)
    rows = by_campaign(report_summary(filters=ReportFilters(since=later)))
    assert rows["Welcome"]["granted"] == 0
    assert rows["Welcome"]["total_credit"] == Decimal("0.00")
    only = list(report_summary(filters=ReportFilters(campaign_id=book["convert"].pk)))
    assert [row["name"] for row in only] == ["Convert"]


def test_cancellations_group_by_reason_and_an_expiry_reads_expired(book):
    rows = {row["reason"]: row for row in report_cancellations()}
    assert set(rows) == {"drawdown", "expired"}
    assert rows["drawdown"]["count"] == 2
    assert rows["drawdown"]["credit_removed"] == Decimal("340.00")
    assert rows["expired"]["count"] == 1
    assert rows["expired"]["credit_removed"] == Decimal("40.00")


def test_the_summary_api_answers_per_campaign_with_money_as_strings(book, client_as):
    response = client_as(Role.READ_ONLY.value).get("/api/v1/reports/summary/")
    assert response.status_code == 200
    rows = by_campaign(response.json()["results"])
    assert set(rows["Welcome"]) >= {
        "campaign_id",
        "name",
        "granted",
        "active",
        "converted",
        "cancelled",
        "expired",
        "total_credit",
        "total_converted",
        "total_removed",
    }
    assert rows["Welcome"]["total_credit"] == "900.00"
    assert rows["Convert"]["total_converted"] == "170.00"
    assert rows["Convert"]["total_removed"] == "80.00"


def test_the_summary_api_filters_by_campaign_and_window(book, client_as):
    api = client_as(Role.SUPER_ADMIN.value)
    only = api.get(f"/api/v1/reports/summary/?campaign={book['welcome'].pk}").json()
    assert [row["name"] for row in only["results"]] == ["Welcome"]
    future = (timezone.now() + timedelta(days=1)).isoformat().replace("+00:00", "Z")
    empty = api.get("/api/v1/reports/summary/", {"since": future}).json()
    assert {row["granted"] for row in empty["results"]} == {0}


def test_the_conversions_report_lists_type_c_progress(book, client_as):
    response = client_as(Role.SUPER_ADMIN.value).get("/api/v1/reports/conversions/")
    assert response.status_code == 200
    rows = {row["login"]: row for row in response.json()["results"]}
    assert set(rows) == {5, 6, 7, 8}
    row = rows[5]
    assert set(row) >= {
        "bonus_id",
        "login",
        "amount",
        "lots_required",
        "lots_traded",
        "converted_amount",
        "progress_pct",
    }
    assert (row["amount"], row["lots_required"], row["lots_traded"]) == ("200.00", "20.00", "5.00")
    assert (row["converted_amount"], row["progress_pct"]) == ("50.00", "25.00")
    assert rows[6]["progress_pct"] == "100.00"


def test_the_cancellations_api_answers_by_reason(book, client_as):
    response = client_as(Role.SUPER_ADMIN.value).get("/api/v1/reports/cancellations/")
    assert response.status_code == 200
    rows = {row["reason"]: row for row in response.json()["results"]}
    assert rows["drawdown"] == {"reason": "drawdown", "count": 2, "credit_removed": "340.00"}


def test_the_leverage_report_lists_type_a_with_the_restore_time(book, client_as):
    response = client_as(Role.READ_ONLY.value).get("/api/v1/reports/leverage/")
    assert response.status_code == 200
    rows = {row["login"]: row for row in response.json()["results"]}
    assert set(rows) == {1, 2, 3}  # the failed bonus never set a leverage
    assert rows[1]["original_leverage"] == 500
    assert rows[1]["adjusted_leverage"] == 333
    assert rows[1]["restored_at"] is None
    assert rows[3]["restored_at"] is not None
    assert set(rows[1]) >= {
        "bonus_id",
        "login",
        "original_leverage",
        "adjusted_leverage",
        "restored_at",
    }


@pytest.mark.parametrize("report", ["summary", "conversions", "cancellations", "leverage"])
def test_report_lists_make_the_same_few_queries_however_many_rows(
    report, book, client_as, campaign_factory, django_assert_max_num_queries
):
    for n in range(20):
        make_bonus(campaign_factory(bonus_type="ABC"[n % 3]), login=100 + n)
    api = client_as(Role.SUPER_ADMIN.value)
    with django_assert_max_num_queries(5):
        response = api.get(f"/api/v1/reports/{report}/?page_size=500")
    assert response.status_code == 200


@pytest.mark.parametrize(
    "query", ["since=soon", "campaign=abc", "login=-1", "since=2026-01-02T00:00Z&until=2026-01-01"]
)
def test_a_bad_report_filter_is_a_400(query, client_as):
    response = client_as(Role.SUPER_ADMIN.value).get(f"/api/v1/reports/summary/?{query}")
    assert response.status_code == 400


def read_csv(response):
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.content.decode("utf-8"))))


def read_xlsx(response):
    assert "spreadsheetml" in response["Content-Type"]
    sheet = openpyxl.load_workbook(io.BytesIO(response.content)).active
    header, *rows = list(sheet.iter_rows(values_only=True))
    return [dict(zip(header, row, strict=True)) for row in rows]


def test_the_summary_exports_as_a_csv_that_parses_with_the_reports_rows(book, client_as):
    response = client_as(Role.READ_ONLY.value).get(
        "/api/v1/reports/export/?report=summary&format=csv"
    )
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith('attachment; filename="bonus-summary-')
    assert response["Content-Disposition"].endswith('.csv"')
    rows = by_campaign(read_csv(response))
    assert set(rows) == {"Welcome", "Convert"}
    assert rows["Welcome"]["campaign_id"] == str(book["welcome"].pk)
    assert rows["Welcome"]["granted"] == "3"
    assert rows["Welcome"]["total_credit"] == "900.00"
    assert rows["Welcome"]["total_removed"] == "350.00"
    assert rows["Convert"]["total_converted"] == "170.00"


def test_the_summary_exports_as_an_xlsx_that_openpyxl_loads_with_the_reports_rows(book, client_as):
    response = client_as(Role.SUPER_ADMIN.value).get(
        "/api/v1/reports/export/?report=summary&format=xlsx"
    )
    assert response.status_code == 200
    assert response["Content-Disposition"].endswith('.xlsx"')
    rows = by_campaign(read_xlsx(response))
    assert set(rows) == {"Welcome", "Convert"}
    assert rows["Welcome"]["granted"] == 3
    assert Decimal(str(rows["Welcome"]["total_credit"])) == Decimal("900.00")
    assert Decimal(str(rows["Convert"]["total_converted"])) == Decimal("170.00")


@pytest.mark.parametrize("file_format", ["csv", "xlsx"])
@pytest.mark.parametrize(
    ("report", "key", "expected"),
    [
        ("conversions", "login", {5, 6, 7, 8}),
        ("cancellations", "reason", {"drawdown", "expired"}),
        ("leverage", "login", {1, 2, 3}),
    ],
)
def test_every_report_exports_its_rows_in_both_formats(
    report, key, expected, file_format, book, client_as
):
    response = client_as(Role.SUPER_ADMIN.value).get(
        f"/api/v1/reports/export/?report={report}&format={file_format}"
    )
    assert response.status_code == 200
    rows = read_csv(response) if file_format == "csv" else read_xlsx(response)
    values = {row[key] for row in rows}
    if file_format == "csv" and key == "login":
        values = {int(value) for value in values}
    assert values == expected


def test_the_export_keeps_the_reports_filters(book, client_as):
    response = client_as(Role.SUPER_ADMIN.value).get(
        f"/api/v1/reports/export/?report=summary&format=csv&campaign={book['convert'].pk}"
    )
    assert [row["name"] for row in read_csv(response)] == ["Convert"]


def test_a_formula_in_a_campaign_name_is_exported_as_text(campaign_factory, client_as):
    campaign_factory(name='=HYPERLINK("http://evil")')
    api = client_as(Role.SUPER_ADMIN.value)
    csv_rows = read_csv(api.get("/api/v1/reports/export/?report=summary&format=csv"))
    assert csv_rows[0]["name"].startswith("'=")
    xlsx_rows = read_xlsx(api.get("/api/v1/reports/export/?report=summary&format=xlsx"))
    assert xlsx_rows[0]["name"].startswith("'=")


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("report=nonsense&format=csv", "invalid_report"),
        ("format=csv", "invalid_report"),
        ("report=summary&format=pdf", "invalid_format"),
        ("report=summary", "invalid_format"),
    ],
)
def test_an_unknown_report_or_format_is_a_400_with_a_code(query, code, client_as):
    response = client_as(Role.SUPER_ADMIN.value).get(f"/api/v1/reports/export/?{query}")
    assert response.status_code == 400
    assert response.json()["code"] == code


@pytest.mark.parametrize("kind", [*CALLERS, "api_key"])
@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/reports/summary/",
        "/api/v1/reports/conversions/",
        "/api/v1/reports/cancellations/",
        "/api/v1/reports/leverage/",
        "/api/v1/reports/export/?report=summary&format=csv",
        "/api/v1/reports/export/?report=leverage&format=xlsx",
    ],
)
def test_only_super_admin_and_read_only_get_reports_and_exports(kind, path, client_as):
    assert client_as(kind).get(path).status_code == expected_status(kind, READERS)


def test_report_windows_take_plain_dates(book, client_as):
    tomorrow = (timezone.now() + timedelta(days=1)).date().isoformat()
    api = client_as(Role.SUPER_ADMIN.value)
    rows = api.get(f"/api/v1/reports/conversions/?until={tomorrow}").json()["results"]
    assert {row["login"] for row in rows} == {5, 6, 7, 8}
    assert api.get(f"/api/v1/reports/conversions/?since={tomorrow}").json()["count"] == 0
