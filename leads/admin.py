from django import forms
from django.contrib import admin

from alignment.lib.errors import DomainError
from leads.models import (
    Announcement,
    Assignment,
    AssignmentRule,
    Campaign,
    ImportJob,
    Lead,
    MergeRecord,
    PoolMember,
    Reason,
    ScoreSnapshot,
    ScoringApproval,
    ScoringModel,
    ScoringModelEvent,
    ScoringRun,
    Source,
    StageChange,
    Touchpoint,
)


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class StageChangeInline(ReadOnlyInline):
    model = StageChange
    fields = ("at", "from_stage", "to_stage", "by", "by_system", "reason", "note")
    readonly_fields = fields


class AssignmentInline(ReadOnlyInline):
    model = Assignment
    fields = ("at", "rep", "previous_owner", "rule_name", "by", "by_system", "note")
    readonly_fields = fields


@admin.register(Lead)
class LeadAdmin(admin.ModelAdmin):
    list_display = ("__str__", "email", "company", "stage", "score", "grade", "owner", "created_at")
    list_filter = ("stage", "grade", "source")
    search_fields = ("=email", "=external_id", "company", "last_name")
    raw_id_fields = ("owner", "campaign", "source")
    # stage and its timestamps only move through the lifecycle service
    readonly_fields = (
        "stage",
        "stage_changed_at",
        "mql_at",
        "sal_at",
        "sql_at",
        "opportunity_at",
        "won_at",
        "lost_at",
        "rejected_at",
        "recycled_at",
        "mql_count",
        "first_sales_touch_at",
    )
    inlines = [StageChangeInline, AssignmentInline]
    show_full_result_count = False


@admin.register(Touchpoint)
class TouchpointAdmin(admin.ModelAdmin):
    list_display = ("lead", "kind", "occurred_at", "campaign")
    list_filter = ("kind",)
    raw_id_fields = ("lead", "campaign", "created_by")
    show_full_result_count = False


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "channel",
        "starts_on",
        "ends_on",
        "budget",
        "marketing_owner",
        "sales_owner",
    )
    list_filter = ("channel",)
    search_fields = ("name", "utm_campaign")


@admin.register(Source)
class SourceAdmin(admin.ModelAdmin):
    list_display = ("name", "key")
    search_fields = ("name", "key")


@admin.register(Reason)
class ReasonAdmin(admin.ModelAdmin):
    list_display = ("label", "kind", "code", "recycles", "requires_note", "active", "position")
    list_filter = ("kind", "active")
    list_editable = ("active", "position")


class PoolMemberInline(admin.TabularInline):
    model = PoolMember
    extra = 1
    fields = ("rep", "weight", "assigned_count")
    readonly_fields = ("assigned_count",)


class AssignmentRuleForm(forms.ModelForm):
    class Meta:
        model = AssignmentRule
        fields = ("name", "position", "active", "conditions")
        help_texts = {
            "conditions": 'All must match; [] matches every lead. Example: [{"field": "country", '
            '"op": "in", "value": ["DE", "AT", "CH"]}, {"field": "attributes.segment", "op": "eq", '
            '"value": "enterprise"}]. Ops: eq, ne, in, not_in, contains, gte, lte, gt, lt, '
            "between, exists."
        }

    def clean_conditions(self):
        from leads.routing import validate_conditions

        conditions = self.cleaned_data["conditions"]
        try:
            validate_conditions(conditions)
        except DomainError as exc:
            raise forms.ValidationError(exc.message) from None
        return conditions


@admin.register(AssignmentRule)
class AssignmentRuleAdmin(admin.ModelAdmin):
    form = AssignmentRuleForm
    list_display = ("name", "position", "active", "conditions")
    list_editable = ("position", "active")
    inlines = [PoolMemberInline]


@admin.register(ImportJob)
class ImportJobAdmin(admin.ModelAdmin):
    list_display = (
        "filename",
        "status",
        "processed_rows",
        "total_rows",
        "error_count",
        "created_at",
    )
    readonly_fields = [f.name for f in ImportJob._meta.fields]


admin.site.register(MergeRecord)
admin.site.register(Announcement)


# --- scoring: versions change only through the sign-off services; the admin shows them -----------


class ScoringApprovalInline(ReadOnlyInline):
    model = ScoringApproval
    fields = ("at", "by", "role", "note")
    readonly_fields = fields


class ScoringModelEventInline(ReadOnlyInline):
    model = ScoringModelEvent
    fields = ("at", "action", "by", "by_role", "by_system", "note")
    readonly_fields = fields


@admin.register(ScoringModel)
class ScoringModelAdmin(admin.ModelAdmin):
    list_display = ("__str__", "status", "origin", "mql_total", "mql_fit", "activated_at")
    list_filter = ("status", "origin")
    inlines = [ScoringApprovalInline, ScoringModelEventInline]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in ScoringModel._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ScoringRun)
class ScoringRunAdmin(admin.ModelAdmin):
    list_display = ("__str__", "kind", "status", "processed", "total", "created_at", "finished_at")
    list_filter = ("status", "kind")
    readonly_fields = [f.name for f in ScoringRun._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(ScoreSnapshot)
class ScoreSnapshotAdmin(admin.ModelAdmin):
    list_display = ("lead", "kind", "at", "total", "fit", "grade", "model")
    list_filter = ("kind",)
    raw_id_fields = ("lead",)
    readonly_fields = [f.name for f in ScoreSnapshot._meta.fields]
    show_full_result_count = False

    def has_add_permission(self, request):
        return False
