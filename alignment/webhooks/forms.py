from django import forms

from alignment.webhooks.models import ALL_EVENTS
from leads.models import EventType

EVENT_TYPE_FORM_CHOICES = [
    (ALL_EVENTS, "Every event type (*)"),
    *((value, f"{label} ({value})") for value, label in EventType.choices),
]


class WebhookEndpointForm(forms.Form):
    url = forms.CharField(
        label="URL",
        max_length=2000,
        help_text="https://… of a public host; it receives a signed POST per event.",
        widget=forms.TextInput(
            attrs={"placeholder": "https://crm.example.com/hooks/pipeline", "inputmode": "url"}
        ),
    )
    description = forms.CharField(
        max_length=200, required=False, help_text="Who receives it, e.g. “HubSpot sync”."
    )
    event_types = forms.MultipleChoiceField(
        choices=EVENT_TYPE_FORM_CHOICES,
        widget=forms.CheckboxSelectMultiple,
        help_text="What it receives; “Every event type” includes types added later.",
    )
    is_active = forms.BooleanField(
        required=False, initial=True, label="Active", help_text="Deliveries are sent only while on."
    )
