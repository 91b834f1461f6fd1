"""(being built)"""

from kpis.tables import Table


def voice_tables(*, period, source_id=None, campaign_id=None) -> list[Table]:
    return []
