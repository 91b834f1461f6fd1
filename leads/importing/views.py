from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET

from alignment.decorators import team_member_required
from alignment.lib.errors import DomainError
from alignment.permissions import Action, can
from leads.importing import services
from leads.importing.forms import ImportForm
from leads.importing.tasks import import_job_queue
from leads.models import ImportJob, ImportStatus

RECENT_JOBS = 10


@team_member_required
def import_upload(request):
    if not can(request.user, Action.LEAD_IMPORT):
        raise PermissionDenied(
            "Importing leads is for marketing: marketers, marketing managers and admins."
        )
    form = ImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            job = services.import_job_create(by=request.user, **form.job_options())
        except DomainError as exc:
            field = exc.field if exc.field in form.fields else None
            form.add_error(field, exc.message)
        else:
            transaction.on_commit(lambda: import_job_queue(job.id))
            return redirect("leads:import_job", pk=job.pk)
    jobs = ImportJob.objects.select_related("created_by").order_by("-created_at")[:RECENT_JOBS]
    return render(
        request,
        "leads/import.html",
        {"form": form, "jobs": jobs},
        status=400 if form.errors else 200,
    )


def _job_for(pk: int) -> ImportJob:
    return get_object_or_404(ImportJob.objects.select_related("created_by"), pk=pk)


def job_status(job: ImportJob) -> dict:
    return {
        "id": job.pk,
        "filename": job.filename,
        "status": job.status,
        "status_label": job.get_status_display(),
        "finished": job.status in (ImportStatus.DONE, ImportStatus.FAILED),
        "dry_run": job.dry_run,
        "atomic": job.atomic,
        "total_rows": job.total_rows,
        "processed_rows": job.processed_rows,
        "progress_percent": job.progress_percent,
        "created": job.created_count,
        "updated": job.updated_count,
        "unchanged": job.unchanged_count,
        "bad_rows": job.error_count,
        "errors": job.errors,
        "message": job.message,
        "resumed": len(services.resume_notes(message=job.message)),
        "created_at": job.created_at.isoformat(),
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
    }


@team_member_required
@require_GET
def import_job(request, pk: int):
    job = _job_for(pk)
    return render(
        request,
        "leads/import_job.html",
        {
            "job": job,
            "status": job_status(job),
            "status_url": reverse("leads:import_status", args=[job.pk]),
        },
    )


@team_member_required
@require_GET
def import_status(request, pk: int):
    return JsonResponse(job_status(_job_for(pk)))
