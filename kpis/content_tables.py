"""The KPI page's content tables, from kpis.selectors.content: what sales shared and what came of
the opportunities that touched each asset, against those that touched none; and the sales-ready
assets sales did not share."""

from kpis.selectors.content import content_unused, content_usage
from kpis.tables import COUNT, DAYS, PERCENT, TEXT, Table, pct

UNUSED_LISTED = 50


def _usage(usage) -> Table:
    rows = [*usage.rows, usage.baseline]
    return Table(
        "content",
        "Content: shared, engaged, and the deals it touched",
        [
            ("Asset", TEXT),
            ("Shared", COUNT),
            ("Leads engaged", COUNT),
            ("Opportunities closed", COUNT),
            ("Won", COUNT),
            ("Win rate", PERCENT),
            ("Median days", DAYS),
        ],
        [
            [
                r.title,
                r.shares if r.asset_id is not None else None,
                r.leads_engaged if r.asset_id is not None else None,
                r.opportunities,
                r.won,
                r.win_rate,
                r.median_days,
            ]
            for r in rows
        ]
        if usage.rows or usage.baseline.opportunities
        else [],
        # the chart draws the shares; with none shared the table still shows the closes
        chart=1 if usage.shares else None,
        labels=1,
        empty="Sales shared no asset, no lead engaged with one and no opportunity closed in "
        "this period: pick another period or clear a filter.",
        note=f"{usage.shares} shares by sales and {usage.leads_engaged} leads engaging with "
        "content in the period. Opportunities closed: those won or lost in the period whose "
        "lead had the asset shared or engaged with at any time before the close (a lead counts "
        "for each asset it touched); win rate is won ÷ those; median days from entering "
        f"opportunity to the close. “No content”: the closed opportunities that touched no "
        f"asset at all (win rate {pct(usage.baseline.win_rate)}), the baseline to compare with.",
    )


def _unused(unused) -> Table:
    shown = len(unused.assets)
    return Table(
        "content_unused",
        "Unused content",
        [("Asset", TEXT), ("Owner", TEXT), ("Age", DAYS)],
        [[a.title, a.owner or "—", a.age_days] for a in unused.assets],
        empty="Sales shared every sales-ready asset in this period."
        if unused.total
        else "The library has no sales-ready asset yet.",
        note=f"{unused.unused} of {unused.total} sales-ready assets ({pct(unused.share)}) were "
        "not shared by sales in the period, oldest first; age at the period's end. Not "
        "filtered by source or campaign."
        + (f" The oldest {shown} are listed." if unused.unused > shown else ""),
    )


def content_tables(*, period, source_id=None, campaign_id=None) -> list[Table]:
    usage = content_usage(period=period, source_id=source_id, campaign_id=campaign_id)
    return [_usage(usage), _unused(content_unused(period=period, limit=UNUSED_LISTED))]
