"""(being built: the voice of the prospect's figures)"""

from kpis.selectors.periods import Period


def objections_report(*, period: Period) -> dict:
    return {}
