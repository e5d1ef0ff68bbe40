"""The admin's campaign form: groups and countries to pick from the last "Scan MT5"."""

import re
from typing import Any

from django import forms
from django.contrib.admin.widgets import FilteredSelectMultiple

from core.money import StrictDecimalFormField, StrictIntegerFormField

from .models import Campaign
from .selectors import mt5_choices
from .validation import COUNT_FIELDS, DECIMAL_FIELDS, EDITABLE_FIELDS, campaign_check

_SEPARATORS = re.compile(r"[,\n]")


class StringListField(forms.CharField):
    """A list of strings typed as text: separated by commas or one per line."""

    widget = forms.Textarea(attrs={"rows": 2, "cols": 60})

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return ", ".join(value)
        return value

    # A text field that cleans to a list of codes, not to a string.
    def to_python(self, value: Any) -> list[str]:  # type: ignore[override]
        if isinstance(value, list | tuple):
            return [str(item).strip() for item in value if str(item).strip()]
        items = [item.strip() for item in _SEPARATORS.split(value or "")]
        return [item for item in items if item]


def _choice_field(label: str, scanned: list[str], current: list[str]) -> forms.Field:
    """Pick from the scan; values already set but missing from it stay pickable."""
    choices = [(value, value) for value in scanned]
    choices += [
        (value, f"{value} (not in the last scan)") for value in current if value not in scanned
    ]
    return forms.MultipleChoiceField(
        choices=choices,
        required=False,
        widget=FilteredSelectMultiple(label, is_stacked=False),
        help_text="Choose none for all. The choices come from the last Scan MT5.",
    )


class CampaignAdminForm(forms.ModelForm):
    """Every editable field; the same rules as the API, shown next to their fields."""

    agent_codes = StringListField(
        required=False, help_text="Separated by commas. Matched against the MT5 Lead Source."
    )
    target_groups = StringListField(
        required=False,
        help_text="No Scan MT5 yet: type groups separated by commas. Empty means all.",
    )
    target_countries = StringListField(
        required=False,
        help_text="No Scan MT5 yet: type countries separated by commas. Empty means all.",
    )

    class Meta:
        model = Campaign
        fields = EDITABLE_FIELDS
        # Plain ASCII numbers, as the API takes them: not "1_000", "1e2" or full-width digits.
        field_classes = {
            **dict.fromkeys(DECIMAL_FIELDS, StrictDecimalFormField),
            **dict.fromkeys(COUNT_FIELDS, StrictIntegerFormField),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("stacking", "priority"):
            if name in self.fields:
                self.fields[name].required = False
        groups, countries = mt5_choices()
        for name, label, scanned in (
            ("target_groups", "groups", groups),
            ("target_countries", "countries", countries),
        ):
            if name in self.fields and scanned:
                current = list(self.initial.get(name) or [])
                self.fields[name] = _choice_field(label, scanned, current)

    # Left out of a post (a script, an older page), the stacking setting keeps what the
    # campaign has: exclusive and priority 0 for a new one.
    def clean_stacking(self) -> str:
        return self.cleaned_data.get("stacking") or self.instance.stacking

    def clean_priority(self) -> int:
        value = self.cleaned_data.get("priority")
        return self.instance.priority if value is None else value

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        assert cleaned is not None  # ModelForm.clean returns cleaned_data
        values = {name: getattr(self.instance, name) for name in EDITABLE_FIELDS}
        values.update({name: cleaned[name] for name in EDITABLE_FIELDS if name in cleaned})
        _, problems = campaign_check(values, pk=self.instance.pk)
        for problem in problems:
            if problem.field in self.errors:
                continue
            if problem.field in self.fields:
                self.add_error(problem.field, problem.message)
            else:
                self.add_error(None, f"{problem.field}: {problem.message}")
        return cleaned
