"""Staff pages of the bonus monitor beyond the model admin: manual assign, account lookup,
reports. Mounted under /admin/bonuses/bonus/ by `BonusAdmin.get_urls()`; each page checks the
caller's area in the role table (accounts.roles.API_AREAS), as the API does."""

from decimal import Decimal

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse

from accounts.permissions import has_area
from bonuses import services
from bonuses.models import Bonus, BonusApproval
from bonuses.reports import REPORTS, ReportFilters, report_rows
from bonuses.resources import FORMATS, report_export
from bonuses.selectors import account_lookup
from campaigns.models import Campaign
from core.errors import ApplicationError
from core.money import MAX_BIGINT, MoneyFormField, StrictIntegerFormField
from gateways.errors import GatewayError

# The admin's report page shows this many rows per per-bonus report; exports hold them all.
REPORT_PAGE_ROWS = 200


def require_area(request: HttpRequest, area: str) -> None:
    if not has_area(request, area):
        raise PermissionDenied


def _context(model_admin, request: HttpRequest, title: str, **extra) -> dict:
    return {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "title": title,
        **extra,
    }


# --- Manual assign -----------------------------------------------------------------------------


class AssignForm(forms.Form):
    login = StrictIntegerFormField(label="MT5 login", min_value=1, max_value=MAX_BIGINT)
    campaign = forms.ModelChoiceField(
        queryset=Campaign.objects.exclude(status=Campaign.Status.ARCHIVED).order_by("name"),
        help_text="Only an active campaign inside its dates can grant.",
    )
    deal_id = StrictIntegerFormField(
        label="Deposit deal",
        min_value=1,
        max_value=MAX_BIGINT,
        required=False,
        help_text="The MT5 deal (ticket) of the deposit the bonus is a percentage of: it is "
        "read from the server (not needed for registration campaigns).",
    )
    deposit_amount = MoneyFormField(
        max_digits=14,
        decimal_places=2,
        min_value=Decimal("0.01"),
        required=False,
        help_text="Optional: the deposit's amount, checked against the deal.",
    )
    reason = forms.CharField(
        max_length=500,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Why this bonus is assigned by hand; required to override failed rules.",
    )


def assign_view(model_admin, request: HttpRequest) -> HttpResponse:
    """Check eligibility first; when only overridable rules fail, ask for confirmation.

    The grant goes through `services.bonus_assign`, with the API's bounds: the deposit is a
    real deal, and credit above the user's limit waits for another Super Admin's approval."""
    require_area(request, "bonuses.assign")
    form = AssignForm(request.POST or None)
    page = {"form": form, "blocking": [], "failures": []}
    if request.method == "POST" and form.is_valid():
        fields = form.cleaned_data
        override = request.POST.get("override") == "1"
        try:
            deposit = _deposit_of(fields)
            if override:
                if not fields["reason"].strip():
                    form.add_error("reason", "Say why the failed rules are overridden.")
                    page["failures"] = services.check_eligibility_all(
                        login=fields["login"],
                        campaign=fields["campaign"],
                        deposit_amount=deposit,
                        deal_id=fields["deal_id"],
                    )
                    return _confirm_page(model_admin, request, form, page["failures"])
                return _assign(model_admin, request, fields, override=True)
            failures = services.check_eligibility_all(
                login=fields["login"],
                campaign=fields["campaign"],
                deposit_amount=deposit,
                deal_id=fields["deal_id"],
            )
            if not failures:
                return _assign(model_admin, request, fields, override=False)
            blocking = [failure for failure in failures if not failure.overridable]
            if not blocking:
                return _confirm_page(model_admin, request, form, failures)
            page.update(blocking=blocking, failures=failures)
            messages.error(
                request, "This bonus cannot be assigned: a rule that cannot be overridden fails."
            )
        except services.IneligibleError as exc:
            # The account changed between the check and the grant: decide again on what failed.
            blocking = [failure for failure in exc.failures if not failure.overridable]
            if not blocking and not override:
                return _confirm_page(model_admin, request, form, exc.failures)
            page.update(failures=exc.failures, blocking=blocking)
            messages.error(request, exc.detail)
        except ApplicationError as exc:
            messages.error(request, f"{exc.detail} ({exc.code})")
        except GatewayError as exc:
            messages.error(
                request,
                f"The MT5 server did not answer ({exc}). Check the account's bonuses before "
                "trying again.",
            )
    return TemplateResponse(
        request,
        "admin/bonuses/bonus/assign.html",
        _context(model_admin, request, "Assign a bonus", **page),
    )


def _confirm_page(model_admin, request, form, failures) -> TemplateResponse:
    return TemplateResponse(
        request,
        "admin/bonuses/bonus/assign_confirm.html",
        _context(
            model_admin,
            request,
            "Override failed rules?",
            form=form,
            failures=failures,
            hidden_fields=[
                form[name] for name in ("login", "campaign", "deal_id", "deposit_amount")
            ],
        ),
    )


def _deposit_of(fields) -> Decimal | None:
    """The deposit the eligibility check should see: the deal's amount, read from MT5."""
    if fields["deal_id"] is None:
        if fields["deposit_amount"] is not None:
            raise ApplicationError(
                "A deposit amount must come with the deposit's MT5 deal.", code="deal_required"
            )
        return None
    deal = services.deposit_deal_verify(
        login=fields["login"], deal_id=fields["deal_id"], amount=fields["deposit_amount"]
    )
    return deal.profit


def _assign(model_admin, request, fields, *, override: bool) -> HttpResponse:
    outcome = services.bonus_assign(
        login=fields["login"],
        campaign=fields["campaign"],
        deposit_amount=fields["deposit_amount"],
        deal_id=fields["deal_id"],
        override_eligibility=override,
        reason=fields["reason"].strip(),
        actor=request.user,
    )
    if isinstance(outcome, BonusApproval):
        messages.warning(
            request,
            f"Not granted yet: {outcome.limit_reason} Request #{outcome.pk} of {outcome.amount} "
            f"for {outcome.login} waits for the approval of another Super Admin.",
        )
        return redirect(reverse("admin:bonuses_bonusapproval_change", args=[outcome.pk]))
    bonus = outcome
    overridden = " (failed rules overridden)" if override else ""
    level = messages.SUCCESS if bonus.status == Bonus.Status.ACTIVE else messages.WARNING
    messages.add_message(
        request,
        level,
        f"Bonus #{bonus.pk} of {bonus.amount} assigned to {bonus.login}{overridden}: "
        f"{bonus.get_status_display()}.",
    )
    return redirect(reverse("admin:bonuses_bonus_change", args=[bonus.pk]))


# --- Account lookup ----------------------------------------------------------------------------


class LookupForm(forms.Form):
    login = StrictIntegerFormField(label="MT5 login", min_value=1, max_value=MAX_BIGINT)


def account_lookup_view(model_admin, request: HttpRequest) -> HttpResponse:
    """An account's live state from the server, its bonus history and its audit trail."""
    require_area(request, "mt5.read")
    form = LookupForm(request.GET if "login" in request.GET else None)
    lookup = None
    if form.is_bound and form.is_valid():
        try:
            lookup = account_lookup(login=form.cleaned_data["login"])
        except ApplicationError as exc:
            messages.error(request, exc.detail)
        except GatewayError as exc:
            messages.error(request, f"The MT5 server did not answer ({exc}). Try again shortly.")
    return TemplateResponse(
        request,
        "admin/bonuses/bonus/account_lookup.html",
        _context(model_admin, request, "Account lookup", form=form, lookup=lookup),
    )


# --- Reports -----------------------------------------------------------------------------------


class ReportFilterForm(forms.Form):
    campaign = forms.ModelChoiceField(
        queryset=Campaign.objects.order_by("name"), required=False, empty_label="All campaigns"
    )
    login = StrictIntegerFormField(
        label="MT5 login", min_value=1, max_value=MAX_BIGINT, required=False
    )
    since = forms.DateTimeField(required=False, help_text="UTC, e.g. 2026-01-31 00:00")
    until = forms.DateTimeField(required=False, help_text="UTC, exclusive")

    def filters(self) -> ReportFilters:
        data = self.cleaned_data if self.is_valid() else {}
        campaign = data.get("campaign")
        return ReportFilters(
            campaign_id=campaign.pk if campaign else None,
            login=data.get("login"),
            since=data.get("since"),
            until=data.get("until"),
        )


def reports_view(model_admin, request: HttpRequest) -> HttpResponse:
    """The four reports on one page, each with its CSV and XLSX export."""
    require_area(request, "reports.read")
    form = ReportFilterForm(request.GET or None)
    filters = form.filters() if form.is_bound else ReportFilters()
    tables = {
        report: list(report_rows(report=report, filters=filters)[:REPORT_PAGE_ROWS])
        for report in REPORTS
    }
    query = request.GET.copy()
    query.pop("report", None)
    query.pop("format", None)
    return TemplateResponse(
        request,
        "admin/bonuses/bonus/reports.html",
        _context(
            model_admin,
            request,
            "Bonus reports",
            form=form,
            tables=tables,
            formats=sorted(FORMATS),
            filter_query=query.urlencode(),
            row_limit=REPORT_PAGE_ROWS,
        ),
    )


def report_export_view(model_admin, request: HttpRequest) -> HttpResponse:
    """`?report=...&format=csv|xlsx` and the page's filters: the file, through the resources."""
    require_area(request, "reports.read")
    report, file_format = request.GET.get("report", ""), request.GET.get("format", "")
    form = ReportFilterForm(request.GET)
    if report not in REPORTS or file_format not in FORMATS or not form.is_valid():
        messages.error(request, "Choose a report and a format (csv or xlsx), with valid filters.")
        return redirect("admin:bonuses_bonus_reports")
    exported = report_export(report=report, file_format=file_format, filters=form.filters())
    response = HttpResponse(exported.content, content_type=exported.content_type)
    response["Content-Disposition"] = f'attachment; filename="{exported.filename}"'
    return response
