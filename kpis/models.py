"""Shared goals: a target for one figure over a week, a month or a quarter, owned by marketing,
by sales or by both. Progress is never stored: it is read from the figure's selector
(kpis.selectors.goals)."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class Metric(models.TextChoices):
    """The figures a goal may target; each is read by one selector (kpis.selectors.goals)."""

    MQLS_DELIVERED = "mqls_delivered", "MQLs delivered"
    MQLS_ACCEPTED = "mqls_accepted", "MQLs accepted by sales"
    MQL_ACCEPTANCE_RATE = "mql_acceptance_rate", "MQL acceptance rate"
    OPPORTUNITIES_CREATED = "opportunities_created", "Opportunities created"
    PIPELINE_CREATED = "pipeline_created", "Pipeline created"
    CUSTOMERS_WON = "customers_won", "Customers won"
    REVENUE_WON = "revenue_won", "Revenue won"
    SLA_RESPONSE_ATTAINMENT = "sla_response_attainment", "Responses within the SLA"


class PeriodKind(models.TextChoices):
    WEEK = "week", "Week"
    MONTH = "month", "Month"
    QUARTER = "quarter", "Quarter"


class Goal(models.Model):
    metric = models.CharField(max_length=40, choices=Metric.choices)
    period_kind = models.CharField(max_length=10, choices=PeriodKind.choices)
    # the first day of the period (a Monday, the 1st of a month or of a quarter), in the
    # agreement's time zone
    period_start = models.DateField()
    target = models.DecimalField(max_digits=14, decimal_places=2)
    marketing = models.BooleanField(default=False)  # owned by marketing
    sales = models.BooleanField(default=False)  # owned by sales
    note = models.CharField(max_length=300, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["period_start", "metric"]
        constraints = [
            models.UniqueConstraint(
                fields=["metric", "period_kind", "period_start"], name="goal_one_per_period"
            ),
            models.CheckConstraint(condition=Q(target__gt=0), name="goal_target_positive"),
            models.CheckConstraint(
                condition=Q(marketing=True) | Q(sales=True), name="goal_has_an_owner"
            ),
        ]
        indexes = [models.Index(fields=["period_kind", "period_start"], name="goal_period")]

    def __str__(self) -> str:
        return f"{self.get_metric_display()} {self.get_period_kind_display()} {self.period_start}"

    @property
    def teams(self) -> tuple[str, ...]:
        return tuple(
            t for t, owned in (("marketing", self.marketing), ("sales", self.sales)) if owned
        )


# the stages whose time the funnel measures (won is final)
TIMED_STAGES = ["mql", "sal", "sql", "opportunity"]
# the columns every KPI filter reads (the lead's current source, campaign and owner)
_FILTERS = ["source_id", "campaign_id", "owner_id"]


class StageStay(models.Model):
    """A rollup of the lead event log (kpis.rollups): one row per lead for its creation (stage
    "lead") and one per entry into a lifecycle stage, with when and how the stay ended. Never
    written by hand: the outbox reaction rewrites a lead's rows from its events after every
    lifecycle event, and `manage.py kpis_rebuild` rewrites them all. The KPI selectors read it
    instead of pairing events with correlated lookups across millions of them."""

    # like the event log: no constraint, no cascade (a merged duplicate's history stays)
    lead = models.ForeignKey(
        "leads.Lead",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
    )
    # when the lead was created (its lead.created event): the funnel's cohort
    lead_created_at = models.DateTimeField(null=True)
    # the lead's current source, campaign and owner (the filters), rewritten when they change
    source_id = models.BigIntegerField(null=True)
    campaign_id = models.BigIntegerField(null=True)
    owner_id = models.BigIntegerField(null=True)
    # on the creation row: the furthest funnel stage the lead reached (1 MQL ... 5 won; 0 none)
    furthest = models.PositiveSmallIntegerField(default=0)
    stage = models.CharField(max_length=20)  # "lead" for the creation, else a Stage code
    from_stage = models.CharField(max_length=20, blank=True)
    entered_at = models.DateTimeField()
    left_at = models.DateTimeField(null=True)
    exit_to = models.CharField(max_length=20, blank=True)  # the stage it left for
    exit_reason = models.CharField(max_length=64, blank=True)  # the reason code of that move
    deal_value = models.DecimalField(max_digits=14, decimal_places=2, null=True)  # of the entry
    # a win: the latest entry into MQL and into opportunity at or before it
    mql_at = models.DateTimeField(null=True)
    opened_at = models.DateTimeField(null=True)
    # an opportunity or a win: the campaign of the first and the last campaign touchpoint at or
    # before the move into opportunity (null: no such touchpoint)
    first_campaign_id = models.BigIntegerField(null=True)
    last_campaign_id = models.BigIntegerField(null=True)

    class Meta:
        # covering indexes (PostgreSQL INCLUDE; plain ones on SQLite): a month at a million
        # leads is ~300,000 rows whose heap pages lie scattered (rows are written lead by
        # lead), so each figure is answered from its index alone (index-only scans)
        indexes = [
            models.Index(fields=["lead", "entered_at"], name="stay_lead"),
            # entries into a stage in a period: MQL decisions, pipeline, wins, losses
            models.Index(
                fields=["stage", "entered_at"],
                name="stay_stage_entered",
                include=[
                    "id",
                    *_FILTERS,
                    "exit_to",
                    "exit_reason",
                    "from_stage",
                    "deal_value",
                    "mql_at",
                    "first_campaign_id",
                    "last_campaign_id",
                ],
            ),
            # the funnel's cohort: how far each lead got (its creation row) ...
            models.Index(
                fields=["lead_created_at"],
                name="stay_cohort_reached",
                include=["id", *_FILTERS, "furthest"],
                condition=Q(stage="lead"),
            ),
            # ... and the times of its ended stays in the timed stages
            models.Index(
                fields=["lead_created_at"],
                name="stay_cohort_ended",
                include=["id", *_FILTERS, "stage", "entered_at", "left_at"],
                condition=Q(left_at__isnull=False, stage__in=TIMED_STAGES),
            ),
            # the cohort as of a given time (`until`): every stay of its leads
            models.Index(fields=["lead_created_at", "stage"], name="stay_cohort"),
            # opportunities that closed after a period's end
            models.Index(
                fields=["stage", "left_at"],
                name="stay_stage_left",
                include=["id", *_FILTERS, "entered_at", "exit_to", "lead_id"],
            ),
        ]

    def __str__(self) -> str:
        return f"lead {self.lead_id} in {self.stage} from {self.entered_at:%Y-%m-%d %H:%M}"
