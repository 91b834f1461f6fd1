"""Events other apps hang on. Sent inside the transaction that made the change, so a receiver's
writes (an SLA clock, a score snapshot) commit or roll back together with the move itself."""

from django.dispatch import Signal

# kwargs: lead, at, by, system. Sent exactly once per crossing into MQL (also for a re-MQL).
lead_became_mql = Signal()
# kwargs: lead, change (the StageChange row just written)
lead_stage_changed = Signal()
# kwargs: touchpoint, lead
touchpoint_recorded = Signal()
