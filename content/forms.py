"""The content library's forms: the library's filters, an asset (link or upload), a share."""

from django import forms

from content.library import AssetFilter
from content.models import Asset, AssetKind, FunnelStage
from content.services import ALLOWED
from leads.models import Campaign

READY_CHOICES = [("yes", "Sales ready only"), ("all", "All assets"), ("no", "Not sales ready yet")]


class LibraryFilterForm(forms.Form):
    q = forms.CharField(required=False, max_length=200, label="Search titles")
    stage = forms.ChoiceField(
        required=False, choices=[("", "Any stage"), *FunnelStage.choices], label="Funnel stage"
    )
    kind = forms.ChoiceField(required=False, choices=[("", "Any kind"), *AssetKind.choices])
    industry = forms.CharField(required=False, max_length=100)
    persona = forms.CharField(required=False, max_length=100)
    ready = forms.ChoiceField(required=False, choices=READY_CHOICES, label="Show")

    def __init__(self, data, *, ready_default: bool):
        self.ready_default = "yes" if ready_default else "all"
        super().__init__(data)
        self.fields["ready"].initial = self.ready_default

    def asset_filter(self) -> AssetFilter:
        data: dict = {}
        if self.is_bound:
            # a value that is not valid is left out (and named on the form); the others filter
            self.full_clean()
            data = self.cleaned_data
        ready = data.get("ready") or self.ready_default
        return AssetFilter(
            stage=data.get("stage", ""),
            kind=data.get("kind", ""),
            industry=data.get("industry", ""),
            persona=data.get("persona", ""),
            q=data.get("q", ""),
            sales_ready={"yes": True, "no": False}.get(ready),
        )


class AssetForm(forms.Form):
    """An asset's fields as a person types them; content.services checks them."""

    title = forms.CharField(max_length=200)
    kind = forms.ChoiceField(choices=AssetKind.choices)
    funnel_stage = forms.ChoiceField(choices=FunnelStage.choices, label="Funnel stage")
    personas = forms.CharField(
        required=False,
        max_length=500,
        help_text="Job titles it is for, separated by commas: CFO, IT manager.",
    )
    industries = forms.CharField(
        required=False, max_length=500, help_text="Separated by commas: banking, retail."
    )
    url = forms.CharField(
        required=False,
        max_length=500,
        label="Link",
        help_text="A web address (https://...), or upload a file below: one or the other.",
    )
    file = forms.FileField(
        required=False,
        label="Upload a file",
        help_text=f"{ALLOWED}. Uploading a file replaces the link.",
    )
    campaign = forms.ModelChoiceField(
        queryset=Campaign.objects.order_by("name"), required=False, empty_label="No campaign"
    )
    sales_ready = forms.BooleanField(
        required=False,
        label="Sales ready",
        help_text="Reps may share it with leads, and it is suggested on lead pages.",
    )

    @classmethod
    def initial_of(cls, asset: Asset) -> dict:
        return {
            "title": asset.title,
            "kind": asset.kind,
            "funnel_stage": asset.funnel_stage,
            "personas": ", ".join(asset.personas),
            "industries": ", ".join(asset.industries),
            "url": asset.url,
            "campaign": asset.campaign_id,
            "sales_ready": asset.sales_ready,
        }

    def service_data(self) -> dict:
        data = dict(self.cleaned_data)
        data.pop("file", None)
        return data


class ShareForm(forms.Form):
    lead = forms.IntegerField(min_value=1, max_value=2**63 - 1)
    note = forms.CharField(required=False, max_length=1_000)
