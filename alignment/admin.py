from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from alignment.models import User, WorkerHeartbeat


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    list_display = ("username", "email", "first_name", "last_name", "role", "available", "capacity")
    list_filter = ("role", "available", "is_active", "is_staff")
    fieldsets = (
        *BaseUserAdmin.fieldsets,
        ("Team", {"fields": ("role", "capacity", "working_timezone", "available")}),
    )
    add_fieldsets = (
        *BaseUserAdmin.add_fieldsets,
        ("Team", {"fields": ("role", "capacity", "working_timezone", "available")}),
    )


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(admin.ModelAdmin):
    list_display = ("name", "beat_at")
