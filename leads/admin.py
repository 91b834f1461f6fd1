"""The admin is for settings (campaigns, sources, reasons, routing rules) and for looking. Every
change to a lead goes through the services in leads/, as from any other door: a lead's plain data
is edited through `lead_update`, the rest of it (stage, owner, score...) only by the pipeline's own
actions; history tables are read-only and nothing that carries history is deleted here."""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html

from alignment.lib.errors import DomainError
from leads.events import outbox_retry
from leads.models import (
    LEAD_TEXT_FIELDS,
    Announcement,
    Assignment,
    AssignmentRule,
    Campaign,
    EventType,
    ImportJob,
    Lead,
    LeadEvent,
    MergeRecord,
    OutboxEntry,
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
from leads.routing import validate_conditions
from leads.services import lead_update

LEADS_NEVER_DELETED = (
    "Leads are never deleted: their history is append-only. Merge duplicates on the lead page; "
    "a privacy erase will come later."
)
# the lead's plain data; everything else on a lead moves only through the pipeline's own actions
LEAD_EDITABLE_FIELDS = (*LEAD_TEXT_FIELDS, "company_size", "source", "campaign")
LEAD_READONLY_FIELDS = tuple(
    f.name for f in Lead._meta.concrete_fields if f.name not in LEAD_EDITABLE_FIELDS
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


class ViewOnlyAdmin(admin.ModelAdmin):
    """History and records written by the services: shown, never added, changed or deleted here."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class LeadIdSearch:
    """The search box takes lead ids: an exact match on an indexed column, never a text scan of a
    table with millions of rows."""

    search_fields = ("lead_id",)  # shows the box; get_search_results does the lookup
    search_help_text = "One or more lead ids (numbers), separated by spaces."
    lead_id_lookup = "lead_id__in"

    def get_search_results(self, request, queryset, search_term):
        terms = search_term.replace(",", " ").split()
        if not terms:
            return queryset, False
        if not all(term.isdigit() and len(term) <= 18 for term in terms):
            self.message_user(
                request, f"Search by lead id: “{search_term}” is not a number.", messages.WARNING
            )
            return queryset.none(), False
        return queryset.filter(**{self.lead_id_lookup: [int(term) for term in terms]}), False


class LeadAdminForm(forms.ModelForm):
    # set by LeadAdmin.changeform_view when lead_update refused the change: shown as a form error
    refusal: DomainError | None = None

    def clean(self):
        cleaned = super().clean()
        if self.refusal is not None:
            field = self.refusal.field if self.refusal.field in self.fields else None
            self.add_error(field, self.refusal.message)
        return cleaned


_LEAD_FIELDSETS = (
    ("Person", ("first_name", "last_name", "title", "phone", "email", "external_id")),
    ("Company", ("company", "company_size", "industry", "country", "website")),
    (
        "Origin",
        (
            "source",
            "campaign",
            "utm_source",
            "utm_medium",
            "utm_campaign",
            "utm_term",
            "utm_content",
        ),
    ),
    (
        "Pipeline (moves only through the actions on the lead page)",
        (
            "stage",
            "stage_changed_at",
            "owner",
            "assigned_at",
            "nurturing_at",
            "mql_at",
            "sal_at",
            "sql_at",
            "opportunity_at",
            "won_at",
            "lost_at",
            "rejected_at",
            "recycled_at",
            "first_mql_at",
            "mql_count",
            "first_sales_touch_at",
            "deal_value",
            "last_reason",
        ),
    ),
    (
        "Score (kept by the scoring model)",
        (
            "score",
            "fit_score",
            "engagement_score",
            "grade",
            "scored_with",
            "engagement_anchor_at",
            "engagement_sums",
        ),
    ),
    ("Other imported values", ("attributes",)),
    ("Record", ("id", "created_at", "updated_at")),
)
# a field added to the model later is still shown (read-only) rather than silently hidden
_LEAD_UNLISTED = tuple(
    f.name
    for f in Lead._meta.concrete_fields
    if f.name not in {name for _, names in _LEAD_FIELDSETS for name in names}
)


@admin.register(Lead)
class LeadAdmin(admin.ModelAdmin):
    form = LeadAdminForm
    list_display = ("__str__", "email", "company", "stage", "score", "grade", "owner", "created_at")
    list_filter = ("stage", "grade", "source")
    search_fields = ("=email", "=external_id", "company", "last_name")
    raw_id_fields = ("campaign", "source")
    readonly_fields = LEAD_READONLY_FIELDS
    fieldsets = tuple((title, {"fields": names}) for title, names in _LEAD_FIELDSETS) + (
        (("Other", {"fields": _LEAD_UNLISTED}),) if _LEAD_UNLISTED else ()
    )
    inlines = [StageChangeInline, AssignmentInline]
    show_full_result_count = False

    def has_add_permission(self, request):
        # leads come from forms, the API and imports, which match duplicates and score them
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        refusal = getattr(request, "lead_update_refusal", None)
        if refusal is not None:
            form = type(form.__name__, (form,), {"refusal": refusal})
        return form

    def save_model(self, request, obj, form, change):
        """Never obj.save(): the service locks the row, writes only the changed columns, appends
        the lead.updated event and rescores, as for every other change to a lead."""
        changes: dict[str, Any] = {name: form.cleaned_data[name] for name in form.changed_data}
        if changes:
            lead_update(lead=obj, changes=changes, by=request.user, system="admin")

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except DomainError as refusal:
            # the admin's transaction is rolled back; show the form again with the reason
            request.lead_update_refusal = refusal
            return super().changeform_view(request, object_id, form_url, extra_context)

    def delete_view(self, request, object_id, extra_context=None):
        self.message_user(request, LEADS_NEVER_DELETED, messages.ERROR)
        lead = self.get_object(request, unquote(object_id))
        if lead is None:
            return HttpResponseRedirect(reverse("admin:leads_lead_changelist"))
        return HttpResponseRedirect(reverse("admin:leads_lead_change", args=[lead.pk]))


@admin.register(Touchpoint)
class TouchpointAdmin(LeadIdSearch, ViewOnlyAdmin):
    """Touchpoints are recorded through leads.services.touchpoint_record, which scores them."""

    list_display = ("lead", "kind", "occurred_at", "campaign")
    list_filter = ("kind",)
    show_full_result_count = False


@admin.register(StageChange)
class StageChangeAdmin(LeadIdSearch, ViewOnlyAdmin):
    list_display = ("lead", "from_stage", "to_stage", "at", "by", "by_system", "reason")
    list_filter = ("to_stage",)
    show_full_result_count = False


@admin.register(Assignment)
class AssignmentAdmin(LeadIdSearch, ViewOnlyAdmin):
    list_display = ("lead", "rep", "previous_owner", "rule_name", "at", "by", "by_system")
    show_full_result_count = False


@admin.register(MergeRecord)
class MergeRecordAdmin(ViewOnlyAdmin):
    list_display = ("merged_lead_id", "survivor", "by", "at")
    search_fields = ("=merged_lead_id",)


@admin.register(Announcement)
class AnnouncementAdmin(ViewOnlyAdmin):
    list_display = ("title", "lead", "created_at", "emailed_at")


class EventTypeFilter(admin.SimpleListFilter):
    """The known types, without a SELECT DISTINCT over millions of rows."""

    title = "type"
    parameter_name = "type"

    def lookups(self, request, model_admin):
        return EventType.choices

    def queryset(self, request, queryset):
        return queryset.filter(type=self.value()) if self.value() else queryset


@admin.register(LeadEvent)
class LeadEventAdmin(LeadIdSearch, ViewOnlyAdmin):
    list_display = ("occurred_at", "type", "lead_id", "actor", "system")
    list_filter = (EventTypeFilter,)
    # newest first by primary key: an index scan however large the log grows
    ordering = ("-id",)
    fields = ("id", "type", "lead_link", "occurred_at", "recorded_at", "actor", "system", "payload")
    readonly_fields = fields
    show_full_result_count = False

    @admin.display(description="lead")
    def lead_link(self, event: LeadEvent) -> str:
        # a merged duplicate's events keep its id after the lead is gone: no lookup, just the link
        if event.lead_id is None:
            return "—"
        url = reverse("admin:leads_lead_change", args=[event.lead_id])
        return format_html('<a href="{}">{}</a>', url, event.lead_id)


class OutboxStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return (
            ("pending", "Pending"),
            ("dispatched", "Dispatched"),
            ("failed", "Failed (given up)"),
        )

    def queryset(self, request, queryset):
        match self.value():
            case "pending":
                return queryset.filter(dispatched_at=None, failed_at=None)
            case "dispatched":
                return queryset.filter(dispatched_at__isnull=False)
            case "failed":
                return queryset.filter(failed_at__isnull=False)
        return queryset


@admin.register(OutboxEntry)
class OutboxEntryAdmin(ViewOnlyAdmin):
    list_display = (
        "id",
        "reaction",
        "event",
        "attempts",
        "available_at",
        "dispatched_at",
        "failed_at",
        "error",
    )
    list_filter = (OutboxStateFilter,)
    ordering = ("-id",)
    actions = ("retry",)
    readonly_fields = [f.name for f in OutboxEntry._meta.fields]
    show_full_result_count = False

    @admin.display(description="last error")
    def error(self, entry: OutboxEntry) -> str:
        # the last line of the traceback says what went wrong; the entry's page has all of it
        lines = entry.last_error.strip().splitlines()
        return lines[-1][:200] if lines else ""

    def has_retry_permission(self, request) -> bool:
        return request.user.has_perm("leads.change_outboxentry")

    @admin.action(description="Retry", permissions=("retry",))
    def retry(self, request, queryset):
        ids = list(queryset.values_list("pk", flat=True))
        count = outbox_retry(ids=ids)
        entries = "entry" if count == 1 else "entries"
        text = f"{count} outbox {entries} will be tried again by the dispatcher (within a minute)."
        if len(ids) > count:
            text += f" {len(ids) - count} already dispatched left alone."
        self.message_user(request, text, messages.SUCCESS if count else messages.WARNING)


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
