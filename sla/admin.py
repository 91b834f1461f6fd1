"""The agreement in the admin: read only. A version changes through its pages, where the two
managers sign it off; the admin must not be a way round that."""

from django.contrib import admin

from sla.models import Agreement, AgreementApproval, AgreementEvent


class _ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class AgreementApprovalInline(_ReadOnlyInline):
    model = AgreementApproval
    fields = ("at", "by", "role", "note")
    readonly_fields = fields


class AgreementEventInline(_ReadOnlyInline):
    model = AgreementEvent
    fields = ("at", "action", "by", "by_role", "by_system", "note")
    readonly_fields = fields


@admin.register(Agreement)
class AgreementAdmin(admin.ModelAdmin):
    list_display = ("__str__", "status", "response_hours", "decision_hours", "activated_at")
    list_filter = ("status",)
    inlines = [AgreementApprovalInline, AgreementEventInline]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in Agreement._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
