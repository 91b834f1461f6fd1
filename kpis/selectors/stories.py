"""(being built: win and loss stories' figures)"""

from kpis.selectors.periods import Period


def stories_report(*, period: Period) -> dict:
    return {}
