from django.contrib import admin

from kpis.models import Goal
from leads.admin import ViewOnlyAdmin


@admin.register(Goal)
class GoalAdmin(ViewOnlyAdmin):
    """Goals are set through kpis.services (the KPIs page), which checks the role, the period's
    first day and the owning team: shown here, never changed."""

    list_display = ("metric", "period_kind", "period_start", "target", "marketing", "sales")
    list_filter = ("metric", "period_kind", "marketing", "sales")
    date_hierarchy = "period_start"
