"""The KPI page's win and loss reasons (kpis.selectors.stories): by source and by campaign, with
how many of the period's closes have a story at all."""

from content.models import StoryOutcome
from kpis.selectors.stories import DealReasons, deal_reasons_by
from kpis.tables import COUNT, PERCENT, TEXT, Table, pct

HONEST = "Be honest about how we closed the deal: a reason no one writes down is one we cannot fix."

_TEXT = {
    StoryOutcome.WON: ("win_reasons", "Why we won", "won"),
    StoryOutcome.LOST: ("loss_reasons", "Why we lost", "lost"),
}


def _table(result: DealReasons, *, heading: str) -> Table:
    key, title, verb = _TEXT[result.outcome]
    if result.group_by != "source":
        key = f"{key}_{result.group_by}"
    c = result.coverage
    return Table(
        key,
        f"{title} by {heading.lower()}",
        [
            (heading, TEXT),
            ("Reason", TEXT),
            ("Deals", COUNT),
            ("Stories", COUNT),
            ("Share of stories", PERCENT),
        ],
        [[r.group, r.reason, r.count, r.stories, r.share] for r in result.rows],
        chart=2,
        empty=(
            f"No deal {verb} in this period has its story told yet"
            + (f" ({c.closes} {verb}, none told)." if c.closes else ".")
            + " The rep tells it on the lead's page once the deal closes."
        ),
        note=f"{c.with_story} of {c.closes} deals {verb} in the period have a story "
        f"({pct(c.share)}). A deal counts once for each reason its rep ticked, by the "
        f"{heading.lower()} it had when the story was told. {HONEST}",
    )


def story_tables(*, period, source_id=None, campaign_id=None) -> list[Table]:
    filters = {"source_id": source_id, "campaign_id": campaign_id}
    found = {
        outcome: deal_reasons_by(period=period, outcome=outcome, **filters)
        for outcome in (StoryOutcome.WON, StoryOutcome.LOST)
    }
    return [
        _table(found[outcome][group], heading=heading)
        for group, heading in (("source", "Source"), ("campaign", "Campaign"))
        for outcome in (StoryOutcome.WON, StoryOutcome.LOST)
    ]
