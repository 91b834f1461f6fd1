"""The CSV import as an async job through the API: the upload page's form, service and task.

POST stores the upload as a queued job (leads.importing.services.import_job_create, which checks
the role and that the file and mapping can be read) and queues the Celery task after commit;
GET polls the job (the page's own status answer, leads.importing.views.job_status)."""

from django.db import transaction
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from alignment.api import PROBLEM_EXAMPLES, api_can
from alignment.api_base import require_team_member
from alignment.idempotency import idempotent
from alignment.lib.errors import PermissionDenied
from alignment.permissions import Action
from leads.api.leads import api_actor
from leads.importing import services
from leads.importing.forms import DELIMITER_CHOICES, ENCODING_CHOICES, ImportForm
from leads.importing.tasks import import_job_queue
from leads.importing.views import job_status
from leads.models import ImportJob, ImportStatus


class ImportRequestSerializer(serializers.Serializer):
    """The upload page's form (leads.importing.forms.ImportForm), which validates it."""

    file = serializers.FileField(help_text="The CSV file (UTF-8, Windows-1252, Latin-1, UTF-16).")
    mapping = serializers.FileField(
        required=False,
        help_text="Optional mapping file (.toml or .json); without one, columns named like a "
        "lead field fill it and the rest become attributes.",
    )
    delimiter = serializers.ChoiceField(
        choices=DELIMITER_CHOICES, required=False, help_text="Empty: detected."
    )
    encoding = serializers.ChoiceField(
        choices=ENCODING_CHOICES, required=False, help_text="Empty: detected."
    )
    dry_run = serializers.BooleanField(
        required=False, help_text="Check and count every row, write nothing."
    )
    atomic = serializers.BooleanField(
        required=False, help_text="All or nothing: write nothing if any row is bad."
    )


class ImportRowErrorSerializer(serializers.Serializer):
    row = serializers.IntegerField(help_text="The row number in the file (the header is row 1).")
    column = serializers.CharField(allow_blank=True)
    reason = serializers.CharField()


class ImportJobSerializer(serializers.Serializer):
    """An import job as its page polls it."""

    id = serializers.IntegerField()
    url = serializers.URLField(help_text="This job's status endpoint.")
    filename = serializers.CharField()
    status = serializers.ChoiceField(choices=ImportStatus.choices)
    status_label = serializers.CharField()
    finished = serializers.BooleanField()
    dry_run = serializers.BooleanField()
    atomic = serializers.BooleanField()
    total_rows = serializers.IntegerField()
    processed_rows = serializers.IntegerField()
    progress_percent = serializers.IntegerField()
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    bad_rows = serializers.IntegerField()
    errors = ImportRowErrorSerializer(
        many=True, help_text=f"The bad rows (the first {services.MAX_STORED_ERRORS})."
    )
    message = serializers.CharField(allow_blank=True)
    resumed = serializers.IntegerField(help_text="How often a stalled job was resumed.")
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)


JOB_EXAMPLE = {
    "id": 12,
    "url": "https://pipeline.example.com/api/v1/imports/12/",
    "filename": "leads.csv",
    "status": "done",
    "status_label": "Done",
    "finished": True,
    "dry_run": False,
    "atomic": False,
    "total_rows": 3,
    "processed_rows": 3,
    "progress_percent": 100,
    "created": 2,
    "updated": 0,
    "unchanged": 0,
    "bad_rows": 1,
    "errors": [{"row": 3, "column": "email", "reason": "Not an email address."}],
    "message": "2 created, 1 bad row.",
    "resumed": 0,
    "created_at": "2026-12-01T10:00:00+00:00",
    "started_at": "2026-12-01T10:00:01+00:00",
    "finished_at": "2026-12-01T10:00:02+00:00",
}


def _job_data(request, job: ImportJob) -> dict:
    url = request.build_absolute_uri(reverse("api-import", args=[job.pk]))
    return ImportJobSerializer({**job_status(job), "url": url}).data


class ImportListView(APIView):
    required_scopes = ("leads:write",)
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        summary="Import leads from a CSV file (async job)",
        description="Uploads a CSV file (multipart) with the import page's options and queues "
        "it as a job; answers 202 with the job and a `Location` to poll "
        "(GET /api/v1/imports/{id}/). Importing is marketing's (marketer, marketing manager, "
        "admin): the key must act as one of them, and a key acting as nobody gets 403 (a job "
        "records who imported). A file that cannot be read as CSV (no header, binary, a wrong "
        "encoding) or a mapping that does not fit it is a 400 and no job. Bad rows do not "
        "fail the job: they are counted and listed by row number.\n\nScope: `leads:write`.",
        request={"multipart/form-data": ImportRequestSerializer},
        responses={202: ImportJobSerializer},
        examples=[
            OpenApiExample(
                "Queued",
                value={**JOB_EXAMPLE, "status": "queued", "status_label": "Queued"},
                response_only=True,
                status_codes=["202"],
            ),
            *PROBLEM_EXAMPLES,
        ],
    )
    @idempotent
    def post(self, request):
        by = api_actor(request)["by"]
        if by is None or not api_can(request, Action.LEAD_IMPORT):
            raise PermissionDenied(
                "Importing leads is for marketing: use a key created --as-user a marketer, a "
                "marketing manager or an admin (the job records who imported)."
            )
        form = ImportForm(request.data, request.FILES)
        if not form.is_valid():
            raise serializers.ValidationError(
                {name: [str(m) for m in messages] for name, messages in form.errors.items()}
            )
        with transaction.atomic():
            job = services.import_job_create(by=by, **form.job_options())
            transaction.on_commit(lambda: import_job_queue(job.pk))
        # the task may have run already (eagerly, or on a fast worker): answer what it is now
        job.refresh_from_db()
        body = _job_data(request, job)
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": body["url"]})


class ImportDetailView(APIView):
    required_scopes = ("leads:write",)

    @extend_schema(
        summary="An import job's status",
        description="Status (queued, running, done, failed), row counts, progress, the message "
        "and the bad rows with their row numbers. Poll until `finished`.\n\n"
        "Scope: `leads:write`.",
        responses={200: ImportJobSerializer},
        examples=[OpenApiExample("Done", value=JOB_EXAMPLE, response_only=True), *PROBLEM_EXAMPLES],
    )
    def get(self, request, pk: int):
        require_team_member(request)
        job = get_object_or_404(ImportJob.objects.select_related("created_by"), pk=pk)
        return Response(_job_data(request, job))


urlpatterns = [
    path("imports/", ImportListView.as_view(), name="api-imports"),
    path("imports/<int:pk>/", ImportDetailView.as_view(), name="api-import"),
]
