from django.contrib import admin

from kpis.models import Goal


@admin.register(Goal)
class GoalAdmin(admin.ModelAdmin):
    """Read-only: goals are set through kpis.services (the KPIs page), which checks the role,
    the period's first day and the owning team."""

    list_display = ("metric", "period_kind", "period_start", "target", "marketing", "sales")
    list_filter = ("metric", "period_kind", "marketing", "sales")
    date_hierarchy = "period_start"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
