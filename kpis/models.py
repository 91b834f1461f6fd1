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
