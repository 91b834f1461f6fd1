"""The story card's one short form: reason checkboxes, one sentence, the competitor (lost) and
the content that helped (won). The choices are the outcome's reason codes and the candidate
assets; content.stories.services checks the rest."""

from django import forms

from content.models import Asset, AssetUse, DealStory, StoryOutcome
from content.stories.services import COMPETITOR_MAX, SENTENCE_MAX, story_reasons
from leads.models import Lead, StageChange

# the content offered as "helped": this lead's shared assets first, then other sales-ready ones
ASSETS_OFFERED = 10


def story_assets(*, lead: Lead, story: DealStory | None = None) -> list[Asset]:
    """The assets a win story offers to tick: those shared with (or engaged by) the lead first,
    newest use first, then other sales-ready ones, up to ASSETS_OFFERED; plus any the story
    already names."""
    used = list(
        dict.fromkeys(
            AssetUse.objects.filter(lead=lead)
            .order_by("-occurred_at", "-id")
            .values_list("asset_id", flat=True)[:200]
        )
    )[:ASSETS_OFFERED]
    named = [a.pk for a in story.assets.all()] if story is not None else []
    wanted = list(dict.fromkeys([*used, *named]))
    found = {a.pk: a for a in Asset.objects.filter(pk__in=wanted)}
    offered = [found[pk] for pk in wanted if pk in found]
    room = ASSETS_OFFERED - len(offered)
    if room > 0:
        offered += list(
            Asset.objects.filter(sales_ready=True)
            .exclude(pk__in=[a.pk for a in offered])
            .order_by("-updated_at", "-id")[:room]
        )
    return offered


class StoryForm(forms.Form):
    reasons = forms.MultipleChoiceField(
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Tick at least one reason."},
    )
    sentence = forms.CharField(
        required=False,
        max_length=SENTENCE_MAX,
        label="In one sentence",
        widget=forms.TextInput(attrs={"maxlength": SENTENCE_MAX}),
    )
    competitor = forms.CharField(
        required=False,
        max_length=COMPETITOR_MAX,
        label="Competitor they chose",
    )
    assets = forms.TypedMultipleChoiceField(
        required=False,
        coerce=int,
        widget=forms.CheckboxSelectMultiple,
        label="Content that helped",
    )

    def __init__(
        self,
        data=None,
        *,
        close: StageChange,
        story: DealStory | None = None,
        assets: list[Asset] | None = None,
    ):
        self.close = close
        self.outcome = close.to_stage
        initial = {}
        if story is not None:
            initial = {
                "reasons": [r.code for r in story.reasons.all()],
                "sentence": story.sentence,
                "competitor": story.competitor,
                "assets": [a.pk for a in story.assets.all()],
            }
        elif close.reason_id is not None:
            # a lost move names a reason already: it starts ticked
            initial = {"reasons": [close.reason.code]}
        super().__init__(data, initial=initial, prefix=f"story{close.pk}")
        self.fields["reasons"].choices = [(r.code, r.label) for r in story_reasons(self.outcome)]
        self.fields["reasons"].label = "Reasons (tick every one that counted)"
        if self.outcome == StoryOutcome.WON:
            del self.fields["competitor"]
            self.fields["assets"].choices = [(a.pk, a.title) for a in assets or []]
        else:
            del self.fields["assets"]
            self.fields["sentence"].widget.attrs["placeholder"] = "What tipped it, in their words"
