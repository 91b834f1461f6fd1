"""The leads app's Celery tasks, in one module for autodiscovery: the outbox dispatcher, imports,
rescoring and fine-tuning."""

from leads.events import outbox_dispatch_task, outbox_prune_task  # noqa: F401  (leads.outbox_*)
from leads.importing.tasks import import_job_run  # noqa: F401  (registers leads.import_job_run)
from leads.scoring.tasks import scoring_rescore_run, scoring_runs_resume  # noqa: F401
from leads.scoring.tuning_tasks import scoring_tune  # noqa: F401
