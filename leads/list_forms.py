"""The forms of the lead list (its filters, the bulk actions) and of the create and edit pages."""

from datetime import date, datetime, time, timedelta

from django import forms
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from alignment.models import SALES_ROLES, User
from leads.intake import lead_find
from leads.models import Campaign, Lead, Reason, ReasonKind, Source, Stage
from leads.selectors import DEFAULT_LIST_ORDER, LIST_ORDERINGS, LeadListFilters

GRADES = ("A", "B", "C", "D")
SORT_CHOICES = [(o, o) for name in LIST_ORDERINGS for o in (name, f"-{name}")]
# at most this many leads in one bulk action: two pages of the list
BULK_MAX = 100


def _day_start(day: date) -> datetime:
    """Midnight of `day` in the zone of this request: the viewer's working time zone."""
    return timezone.make_aware(datetime.combine(day, time.min))


def sales_people():
    return User.objects.filter(is_active=True, role__in=SALES_ROLES).order_by(
        "first_name", "last_name", "username"
    )


class LeadListForm(forms.Form):
    """The list's GET parameters. Dates are whole days in the viewer's working time zone."""

    q = forms.CharField(required=False, label="Search", max_length=200)
    owner = forms.ChoiceField(required=False)
    source = forms.ModelChoiceField(
        queryset=Source.objects.order_by("name"), required=False, empty_label="Any source"
    )
    campaign = forms.ModelChoiceField(
        queryset=Campaign.objects.order_by("name"), required=False, empty_label="Any campaign"
    )
    grade = forms.ChoiceField(
        required=False, choices=[("", "Any grade"), *((g, g) for g in GRADES)]
    )
    score_min = forms.FloatField(required=False, label="Score from")
    score_max = forms.FloatField(required=False, label="Score to")
    stage = forms.MultipleChoiceField(
        required=False, choices=Stage.choices, widget=forms.CheckboxSelectMultiple
    )
    created_from = forms.DateField(
        required=False, label="Created from", widget=forms.DateInput(attrs={"type": "date"})
    )
    created_to = forms.DateField(
        required=False, label="Created to", widget=forms.DateInput(attrs={"type": "date"})
    )
    updated_from = forms.DateField(
        required=False, label="Updated from", widget=forms.DateInput(attrs={"type": "date"})
    )
    updated_to = forms.DateField(
        required=False, label="Updated to", widget=forms.DateInput(attrs={"type": "date"})
    )
    sort = forms.ChoiceField(required=False, choices=SORT_CHOICES)

    def __init__(self, data, *, user: User, people: list[User], **kwargs):
        data = data.copy()
        # the menu's "My leads" link and older bookmarks say mine=1
        if data.get("mine") == "1" and not data.get("owner"):
            data["owner"] = "me"
        super().__init__(data, **kwargs)
        self.user = user
        self.fields["owner"].choices = [
            ("", "Anyone"),
            ("me", "Me"),
            ("none", "Unassigned"),
            *((str(u.pk), str(u)) for u in people),
        ]

    def clean(self):
        data = super().clean()
        low, high = data.get("score_min"), data.get("score_max")
        if low is not None and high is not None and low > high:
            self.add_error("score_max", "The upper score is below the lower one.")
        for start, end in (("created_from", "created_to"), ("updated_from", "updated_to")):
            if data.get(start) and data.get(end) and data[start] > data[end]:
                self.add_error(end, "This day is before the first day.")
        return data

    @property
    def order(self) -> str:
        return self.cleaned_data.get("sort") or DEFAULT_LIST_ORDER

    def filters(self) -> LeadListFilters:
        data = self.cleaned_data
        owner = data.get("owner") or ""
        owner_id = self.user.pk if owner == "me" else int(owner) if owner.isdigit() else None

        def until(day: date | None) -> datetime | None:
            return _day_start(day + timedelta(days=1)) if day else None

        return LeadListFilters(
            stages=tuple(data.get("stage") or ()),
            owner_id=owner_id,
            unassigned=owner == "none",
            source_id=data["source"].pk if data.get("source") else None,
            campaign_id=data["campaign"].pk if data.get("campaign") else None,
            grade=data.get("grade") or "",
            score_min=data.get("score_min"),
            score_max=data.get("score_max"),
            created_from=_day_start(data["created_from"]) if data.get("created_from") else None,
            created_before=until(data.get("created_to")),
            updated_from=_day_start(data["updated_from"]) if data.get("updated_from") else None,
            updated_before=until(data.get("updated_to")),
        )


class BulkForm(forms.Form):
    """Leads ticked on the list, and the action to take on each of them."""

    lead = forms.ModelMultipleChoiceField(
        queryset=Lead.objects.all(),
        error_messages={"required": "Tick at least one lead first."},
    )
    note = forms.CharField(required=False, max_length=500)
    next = forms.CharField(required=False)

    def clean_lead(self):
        leads = self.cleaned_data["lead"]
        if len(leads) > BULK_MAX:
            raise forms.ValidationError(f"At most {BULK_MAX} leads at a time, please.")
        return leads


def recycle_reasons():
    """The recycle reasons (the rejection reasons that also recycle say the same for an MQL)."""
    return Reason.objects.filter(active=True, recycles=True, kind=ReasonKind.RECYCLE).order_by(
        "position", "label"
    )


class BulkAssignForm(BulkForm):
    rep = forms.ModelChoiceField(
        queryset=sales_people(),
        error_messages={"required": "Choose the rep who gets the leads."},
    )


class BulkRecycleForm(BulkForm):
    reason = forms.ModelChoiceField(
        queryset=recycle_reasons(),
        error_messages={"required": "Choose why the leads go back to marketing."},
    )


class LeadDataForm(forms.Form):
    """A lead's own data, as lead_intake and lead_update take it."""

    first_name = forms.CharField(required=False, max_length=100)
    last_name = forms.CharField(required=False, max_length=100)
    title = forms.CharField(required=False, max_length=200)
    phone = forms.CharField(required=False, max_length=50)
    company = forms.CharField(required=False, max_length=200)
    company_size = forms.IntegerField(required=False, min_value=0)
    industry = forms.CharField(required=False, max_length=100)
    country = forms.CharField(required=False, max_length=100)
    website = forms.CharField(required=False, max_length=200)
    source = forms.ModelChoiceField(
        queryset=Source.objects.order_by("name"), required=False, empty_label="(none)"
    )
    campaign = forms.ModelChoiceField(
        queryset=Campaign.objects.order_by("name"), required=False, empty_label="(none)"
    )

    def changes(self) -> dict:
        return {name: self.cleaned_data[name] for name in LeadDataForm.base_fields}


class LeadCreateForm(LeadDataForm):
    email = forms.EmailField(max_length=254)
    field_order = ["email", "first_name", "last_name"]

    def clean_email(self) -> str:
        email = self.cleaned_data["email"]
        existing = lead_find(email=email)
        if existing is not None:
            raise forms.ValidationError(
                format_html(
                    '<a href="{}">{}</a> already has this email: open it to change it.',
                    reverse("leads:detail", args=[existing.pk]),
                    f"{existing.display_name} (lead {existing.pk})",
                )
            )
        return email


class LeadEditForm(LeadDataForm):
    @classmethod
    def initial_for(cls, lead: Lead) -> dict:
        initial = {name: getattr(lead, name) for name in LeadDataForm.base_fields}
        initial.update(source=lead.source_id, campaign=lead.campaign_id)
        return initial
