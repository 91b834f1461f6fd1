"""(being built: the content KPIs)"""

from kpis.selectors.periods import Period


def content_report(*, period: Period) -> dict:
    return {}
