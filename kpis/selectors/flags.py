"""(being built: lead flags' figures)"""

from datetime import datetime

from kpis.selectors.periods import Period


def flags_report(*, period: Period, at: datetime) -> dict:
    return {}
