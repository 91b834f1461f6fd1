"""The KPI page's voice-of-the-prospect tables (kpis.views.kpi_tables appends them): objections
by category, with the share marketing has answered with an asset, and the competitors named."""

from kpis.selectors.voice import objection_categories, objection_competitors
from kpis.tables import COUNT, PERCENT, TEXT, Table


def voice_tables(*, period, source_id=None, campaign_id=None) -> list[Table]:
    filters = {"source_id": source_id, "campaign_id": campaign_id}
    categories = objection_categories(period=period, **filters)
    total = sum(r.count for r in categories)
    answered = sum(r.answered for r in categories)
    competitors = objection_competitors(period=period, **filters)
    return [
        Table(
            "objections",
            "Questions and objections heard by sales",
            [
                ("Category", TEXT),
                ("Logged", COUNT),
                ("Share", PERCENT),
                ("Answered with content", COUNT),
                ("Answered share", PERCENT),
            ],
            [[r.label, r.count, r.share, r.answered, r.answered_share] for r in categories],
            chart=1,
            labels=1,
            empty="Sales logged no question or objection in this period: pick another period "
            "or clear a filter.",
            note=f"{total} logged, {answered} with an asset marketing linked as the answer. "
            "Campaign: the lead's campaign when it was logged; source: the lead's. Not filtered "
            "by rep. Quotes and segments: the Voice of the prospect page (/content/voice/).",
        ),
        Table(
            "objection_competitors",
            "Competitors prospects named",
            [("Competitor", TEXT), ("Mentions", COUNT), ("Share", PERCENT)],
            [[r.name, r.count, r.share] for r in competitors],
            chart=1,
            empty="No competitor was named in this period's questions and objections.",
            note="Objections of any category that name a competitor, counted by name (case "
            "ignored); share of the objections naming one. The ten most named.",
        ),
    ]
