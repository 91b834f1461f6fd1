from django import forms

from alignment.models import API_SCOPES, User


class ApiKeyForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="Who uses it, e.g. “HubSpot sync”.")
    scopes = forms.MultipleChoiceField(
        choices=[(s, s) for s in API_SCOPES], widget=forms.CheckboxSelectMultiple
    )
    as_user = forms.ModelChoiceField(
        queryset=User.objects.filter(is_active=True),
        required=False,
        label="Acting as",
        help_text="Optional: the key is then held to this person's role as well.",
    )
