"""The filters and orderings of the lead list and its CSV export (django-filter)."""

import re
from datetime import datetime

import django_filters
from django import forms
from django.db.models import QuerySet
from django.utils.dateparse import parse_datetime
from django_filters.utils import translate_validation
from drf_spectacular.utils import extend_schema_field
from rest_framework.exceptions import ValidationError

from leads.api.pagination import Keyset
from leads.api.serializers import LEAD_RELATED
from leads.models import Lead, Stage, normalise_key

# `ordering=` values; every one is served by an index with `id` as its tie-breaker except score,
# which no index may hold (a rescore rewrites every lead's score: see migration 0007)
ORDERINGS = ("created_at", "updated_at", "score", "id")
DEFAULT_ORDERING = "-updated_at"
ORDERING_CHOICES = [(o, o) for name in ORDERINGS for o in (name, f"-{name}")]

# "2026-12-01T09:00:00 01:00": an unencoded "+" in a query string arrives as a space
_SPACE_FOR_PLUS = re.compile(r"^(\S+T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) (\d{2}(?::?\d{2})?)$")


class AwareDateTimeField(forms.Field):
    """ISO 8601 with an offset ("Z" or "+01:00"); a time without one is refused, not guessed."""

    default_error_messages = {
        "invalid": "Enter an ISO 8601 date and time, e.g. 2026-12-01T09:00:00+01:00.",
        "naive": "Give the time with its offset (Z or +01:00): a time without one is ambiguous.",
    }

    def to_python(self, value) -> datetime | None:
        if value in self.empty_values:
            return None
        text = str(value).strip()
        text = _SPACE_FOR_PLUS.sub(r"\1+\2", text)
        try:
            parsed = parse_datetime(text)
        except ValueError:
            parsed = None
        if parsed is None:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        if parsed.tzinfo is None:
            raise forms.ValidationError(self.error_messages["naive"], code="naive")
        return parsed


@extend_schema_field({"type": "string", "format": "date-time"})
class AwareDateTimeFilter(django_filters.Filter):
    field_class = AwareDateTimeField


class MultipleStageField(forms.Field):
    """`stage=mql` or `stage=mql,sal`: every value must be a stage."""

    def to_python(self, value) -> list[str]:
        if value in self.empty_values:
            return []
        stages = [s.strip() for s in str(value).split(",") if s.strip()]
        unknown = [s for s in stages if s not in Stage.values]
        if unknown:
            raise forms.ValidationError(
                f"Unknown stage(s): {', '.join(unknown)}. Stages: {', '.join(Stage.values)}."
            )
        return list(dict.fromkeys(stages))


_STAGE = f"({'|'.join(Stage.values)})"


@extend_schema_field({"type": "string", "pattern": f"^{_STAGE}(,{_STAGE})*$"})
class StageFilter(django_filters.Filter):
    field_class = MultipleStageField

    def filter(self, qs: QuerySet, value: list[str]) -> QuerySet:
        if not value:
            return qs
        return qs.filter(stage=value[0]) if len(value) == 1 else qs.filter(stage__in=value)


# a database id: a bigger number names nothing and must not reach the query (SQLite overflows)
MAX_ID = 2**63 - 1


class IdField(forms.IntegerField):
    def __init__(self, **kwargs):
        super().__init__(min_value=1, max_value=MAX_ID, **kwargs)


@extend_schema_field({"type": "integer", "minimum": 1, "maximum": MAX_ID})
class IdFilter(django_filters.NumberFilter):
    field_class = IdField


class OwnerField(forms.Field):
    """A user id, or `none` for the leads nobody owns."""

    def to_python(self, value) -> int | str | None:
        if value in self.empty_values:
            return None
        text = str(value).strip().lower()
        if text == "none":
            return "none"
        if not text.isdigit() or not 0 < int(text) <= MAX_ID:
            raise forms.ValidationError("Give a user id, or none for unassigned leads.")
        return int(text)


@extend_schema_field({"type": "string", "pattern": r"^([1-9][0-9]{0,17}|none)$"})
class OwnerFilter(django_filters.Filter):
    field_class = OwnerField

    def filter(self, qs: QuerySet, value: int | str | None) -> QuerySet:
        if value is None:
            return qs
        if value == "none":
            return qs.filter(owner__isnull=True)
        return qs.filter(owner_id=value)


class LeadFilter(django_filters.FilterSet):
    stage = StageFilter(
        help_text="One stage or several, comma-separated: `mql` or `mql,sal`. "
        f"Stages: {', '.join(Stage.values)}."
    )
    owner = OwnerFilter(help_text="The owner's user id, or `none` for unassigned leads.")
    source = django_filters.CharFilter(
        method="_source",
        help_text="A source key, e.g. `google_ads` (`Google Ads` names the same source).",
    )
    campaign = IdFilter(field_name="campaign_id", help_text="A campaign id.")
    grade = django_filters.CharFilter(field_name="grade", help_text="A grade letter, e.g. `A`.")
    score_min = django_filters.NumberFilter(
        field_name="score", lookup_expr="gte", help_text="Score at least this."
    )
    score_max = django_filters.NumberFilter(
        field_name="score", lookup_expr="lte", help_text="Score at most this."
    )
    updated_since = AwareDateTimeFilter(
        field_name="updated_at",
        lookup_expr="gte",
        help_text="Changed at or after this time (ISO 8601 with an offset; send `+` as `%2B`). "
        "Score changes are not lead changes: follow them in the event feed.",
    )
    created_since = AwareDateTimeFilter(
        field_name="created_at",
        lookup_expr="gte",
        help_text="Created at or after this time (ISO 8601 with an offset).",
    )
    # read by the view (the cursor depends on it), not a filter of its own
    ordering = django_filters.ChoiceFilter(
        choices=ORDERING_CHOICES,
        method="_ordering",
        empty_label=None,
        help_text=f"One of {', '.join(ORDERINGS)}; `-` first for descending. "
        f"Default `{DEFAULT_ORDERING}`; ties are ordered by id.",
    )

    class Meta:
        model = Lead
        fields: list[str] = []

    def _source(self, qs: QuerySet, name: str, value: str) -> QuerySet:
        return qs.filter(source__key=normalise_key(value) or value)

    def _ordering(self, qs: QuerySet, name: str, value: str) -> QuerySet:
        return qs

    @property
    def ordering_value(self) -> str:
        return self.form.cleaned_data.get("ordering") or DEFAULT_ORDERING


# the parameters whose empty value is refused (a source or grade may be matched as "")
NOT_EMPTY = (
    "stage",
    "owner",
    "campaign",
    "score_min",
    "score_max",
    "updated_since",
    "created_since",
    "ordering",
    "page_size",
)


def leads_filtered(request) -> tuple[LeadFilter, Keyset]:
    """The list's and the export's filters (a 400 with field errors when one is wrong) and
    their order."""
    filterset = LeadFilter(
        request.query_params, queryset=Lead.objects.select_related(*LEAD_RELATED), request=request
    )
    # `updated_since=` with no value is a client's template gone wrong, not "no filter"
    empty = {
        name: ["Give a value, or leave the parameter out."]
        for name in NOT_EMPTY
        if name in request.query_params and not request.query_params[name].strip()
    }
    if empty:
        raise ValidationError(empty)
    if not filterset.is_valid():
        raise translate_validation(filterset.errors)
    return filterset, Keyset(filterset.ordering_value)
