"""The flag card's short forms: raise (reason, comment), reply (body), resolve (outcome, note)
and reopen (body). content.flags.services checks the rest (who may, the note an outcome needs)."""

from django import forms

from content.flags.services import TEXT_MAX
from content.models import FlagOutcome, FlagReason

REASON_CHOICES = [("", "Pick a reason…"), *FlagReason.choices]
OUTCOME_CHOICES = [("", "Pick an outcome…"), *FlagOutcome.choices]


def _ids(prefix: str) -> str:
    # every flag on the page has its own forms: their field ids must not collide
    return f"id_{prefix}_%s"


class FlagRaiseForm(forms.Form):
    reason = forms.ChoiceField(
        choices=REASON_CHOICES, error_messages={"required": "Pick what is wrong."}
    )
    comment = forms.CharField(
        max_length=TEXT_MAX,
        label="What is wrong",
        widget=forms.Textarea(attrs={"rows": 2, "maxlength": TEXT_MAX}),
        error_messages={"required": "Say what is wrong with the lead."},
    )

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("auto_id", _ids("flag_new"))
        super().__init__(*args, **kwargs)


class FlagCommentForm(forms.Form):
    body = forms.CharField(
        max_length=TEXT_MAX,
        label="Reply",
        widget=forms.Textarea(attrs={"rows": 2, "maxlength": TEXT_MAX}),
        error_messages={"required": "Write your message first."},
    )

    def __init__(self, *args, flag_id: int = 0, label: str = "Reply", **kwargs):
        kwargs.setdefault("auto_id", _ids(f"flag{flag_id}_reply"))
        super().__init__(*args, **kwargs)
        self.fields["body"].label = label


class FlagResolveForm(forms.Form):
    outcome = forms.ChoiceField(
        choices=OUTCOME_CHOICES, error_messages={"required": "Pick an outcome."}
    )
    resolution = forms.CharField(
        max_length=TEXT_MAX,
        required=False,
        label="Note (needed for explained and not a problem)",
        widget=forms.Textarea(attrs={"rows": 2, "maxlength": TEXT_MAX}),
    )

    def __init__(self, *args, flag_id: int = 0, **kwargs):
        kwargs.setdefault("auto_id", _ids(f"flag{flag_id}_resolve"))
        super().__init__(*args, **kwargs)
