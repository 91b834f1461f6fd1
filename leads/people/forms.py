"""Forms of the People and routing page: a rep's profile, a rule with condition rows and a pool,
and the tester's lead."""

from typing import Any

from django import forms
from django.db.models import Q
from django.forms import formset_factory

from alignment.lib.timezones import zone_or_none
from leads.conditions import ATTRIBUTE_PREFIX, NUMBER, OPS, as_number
from leads.models import Campaign, Lead, Source, Stage
from leads.routing import LEAD_FIELDS, condition_error
from leads.routing.manage import MAX_WEIGHT
from leads.routing.rules import OP_WORDS, field_words

ATTRIBUTE = "attribute"
_ORDERED_OPS = ("gt", "gte", "lt", "lte", "between")


class RepProfileForm(forms.Form):
    available = forms.BooleanField(
        required=False, label="Available for new leads", help_text="Untick while away."
    )
    capacity = forms.IntegerField(
        min_value=0, label="Capacity", help_text="The most open leads routing gives this rep."
    )
    working_timezone = forms.CharField(
        max_length=64, label="Time zone", help_text="A name such as Europe/Berlin."
    )

    def clean_working_timezone(self) -> str:
        zone = self.cleaned_data["working_timezone"].strip()
        if zone_or_none(zone) is None:
            raise forms.ValidationError(
                f"“{zone}” is not a time zone this system knows; use a name such as "
                "Europe/Berlin or America/New_York."
            )
        return zone


class RuleForm(forms.Form):
    name = forms.CharField(max_length=100)
    active = forms.BooleanField(required=False, initial=True, label="Active")


def _field_choices() -> list[tuple[str, str]]:
    fields = sorted(LEAD_FIELDS)
    return [
        ("", "— field —"),
        *((f, field_words(f)) for f in fields),
        (ATTRIBUTE, "attribute (type its key)"),
    ]


def _scalar(text: str, *, numeric: bool) -> Any:
    if numeric and as_number(text) is not None:
        number = as_number(text)
        return int(number) if number.is_integer() else number
    return text


def condition_initial(condition: dict) -> dict:
    """A stored condition as a row of the form."""
    field, op, value = condition.get("field", ""), condition.get("op", ""), condition.get("value")
    attribute = ""
    if isinstance(field, str) and field.startswith(ATTRIBUTE_PREFIX):
        attribute, field = field.removeprefix(ATTRIBUTE_PREFIX), ATTRIBUTE
    if isinstance(value, bool):
        text = "yes" if value else "no"
    elif isinstance(value, list):
        text = ", ".join(str(v) for v in value)
    else:
        text = "" if value is None else str(value)
    return {"field": field, "attribute": attribute, "op": op, "value": text}


class ConditionForm(forms.Form):
    field = forms.ChoiceField(choices=_field_choices, required=False)
    attribute = forms.CharField(
        required=False,
        max_length=100,
        label="Attribute key",
        widget=forms.TextInput(attrs={"placeholder": "for attributes only"}),
    )
    op = forms.ChoiceField(
        choices=[("", "— test —"), *((op, OP_WORDS[op]) for op in OPS)], required=False
    )
    value = forms.CharField(
        required=False,
        max_length=500,
        help_text="lists: a, b, c · between: low, high · is given: yes or no",
    )

    def clean(self) -> dict:
        data = super().clean()
        if data.get("DELETE") or not any(
            data.get(k) for k in ("field", "attribute", "op", "value")
        ):
            data["condition"] = None
            return data
        field = data.get("field") or ""
        if field == ATTRIBUTE:
            key = (data.get("attribute") or "").strip()
            if not key:
                self.add_error("attribute", "Type the attribute's key, e.g. segment.")
                return data
            field = f"{ATTRIBUTE_PREFIX}{key}"
        elif not field:
            self.add_error("field", "Choose the field this condition tests.")
            return data
        op = data.get("op") or ""
        if not op:
            self.add_error("op", "Choose how to test it.")
            return data
        condition = {"field": field, "op": op, "value": self._value(field, op, data["value"])}
        problem = condition_error(condition)
        if problem:
            self.add_error("value", f"This condition {problem}.")
        data["condition"] = condition
        return data

    @staticmethod
    def _value(field: str, op: str, text: str) -> Any:
        text = (text or "").strip()
        numeric = LEAD_FIELDS.get(field) == NUMBER or op in _ORDERED_OPS
        if op == "exists":
            answer = text.lower()
            if answer in ("yes", "true", "y", "1"):
                return True
            if answer in ("no", "false", "n", "0"):
                return False
            return text
        if op in ("in", "not_in", "between"):
            parts = [p.strip() for p in text.split(",") if p.strip()]
            return [_scalar(p, numeric=numeric) for p in parts]
        return _scalar(text, numeric=numeric)


ConditionFormSet = formset_factory(ConditionForm, extra=2, can_delete=True)


def conditions_of(formset) -> list[dict]:
    return [f.cleaned_data["condition"] for f in formset.forms if f.cleaned_data.get("condition")]


class PoolForm(forms.Form):
    """A checkbox and a weight for every sales person who could be in the pool."""

    def __init__(self, *args, people, members: dict[int, int], **kwargs):
        super().__init__(*args, **kwargs)
        self.people = list(people)
        for person in self.people:
            self.fields[f"in_{person.pk}"] = forms.BooleanField(
                required=False, initial=person.pk in members, label=str(person)
            )
            self.fields[f"weight_{person.pk}"] = forms.IntegerField(
                required=False,
                min_value=0,
                max_value=MAX_WEIGHT,
                initial=members.get(person.pk, 1),
                label=f"Weight of {person}",
                widget=forms.NumberInput(attrs={"aria-label": f"Weight of {person}"}),
            )

    def rows(self):
        for person in self.people:
            yield person, self[f"in_{person.pk}"], self[f"weight_{person.pk}"]

    def members(self) -> dict[int, int]:
        # a ticked rep whose weight was left empty takes the usual share
        return {
            p.pk: 1
            if self.cleaned_data.get(f"weight_{p.pk}") is None
            else self.cleaned_data[f"weight_{p.pk}"]
            for p in self.people
            if self.cleaned_data.get(f"in_{p.pk}")
        }


class TesterForm(forms.Form):
    """An existing lead, or a few fields of an imagined one."""

    lead = forms.CharField(
        required=False,
        label="Existing lead",
        help_text="Its number, its email, or a name or company that fits one lead.",
    )
    country = forms.CharField(required=False, max_length=64)
    company_size = forms.IntegerField(required=False, min_value=0, label="Company size")
    industry = forms.CharField(required=False, max_length=100)
    title = forms.CharField(required=False, max_length=200)
    source = forms.ModelChoiceField(queryset=Source.objects.all(), required=False)
    campaign = forms.ModelChoiceField(queryset=Campaign.objects.all(), required=False)
    utm_source = forms.CharField(required=False, max_length=200, label="UTM source")
    attributes = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="One key=value a line, e.g. segment=Enterprise.",
    )

    def clean(self) -> dict:
        data = super().clean()
        ref = (data.get("lead") or "").strip()
        if ref:
            qs = Lead.objects.select_related("source", "campaign", "owner")
            found = (
                qs.filter(pk=int(ref)).first()
                if ref.isdigit()
                else qs.filter(email__iexact=ref).first()
            )
            if found is None and not ref.isdigit():
                # a name or company: usable when it names exactly one lead
                hits = list(
                    qs.filter(
                        Q(company__icontains=ref)
                        | Q(last_name__icontains=ref)
                        | Q(first_name__icontains=ref)
                        | Q(email__icontains=ref)
                    ).order_by("-id")[:6]
                )
                if len(hits) == 1:
                    found = hits[0]
                elif hits:
                    shown = "; ".join(f"{h.pk} {h.display_name}" for h in hits[:5])
                    self.add_error(
                        "lead",
                        f"“{ref}” fits several leads; type one's number: {shown}"
                        + (" …" if len(hits) > 5 else "."),
                    )
                    data["found"] = None
                    return data
            if found is None:
                self.add_error("lead", f"No lead has the number or email, name or company “{ref}”.")
            data["found"] = found
            return data
        attributes = {}
        for number, line in enumerate((data.get("attributes") or "").splitlines(), start=1):
            if not line.strip():
                continue
            key, sep, value = line.partition("=")
            if not sep or not key.strip():
                self.add_error("attributes", f"Line {number} is not key=value.")
                continue
            value = value.strip()
            attributes[key.strip()] = _scalar(value, numeric=True)
        data["found"] = None
        data["imagined"] = Lead(
            stage=Stage.MQL,
            country=(data.get("country") or "").strip(),
            company_size=data.get("company_size"),
            industry=(data.get("industry") or "").strip(),
            title=(data.get("title") or "").strip(),
            utm_source=(data.get("utm_source") or "").strip(),
            source=data.get("source"),
            campaign=data.get("campaign"),
            attributes=attributes,
        )
        return data
