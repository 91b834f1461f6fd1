"""The one settings module. Every per-deploy value comes from the environment (see .env.example);
the defaults make a laptop run work: SQLite, an embedded Celery broker and email written to files."""

from pathlib import Path

from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

from alignment.lib.env import (
    env_bool,
    env_database,
    env_email,
    env_int,
    env_list,
    env_str,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", True)
SECRET_KEY = env_str("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY is required when DEBUG is off.")
    SECRET_KEY = "insecure-laptop-only-key-never-use-in-production-0123456789"
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "alignment",
    "leads",
    "sla",
    "kpis",
    "content",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # reads and shows times in the signed-in person's working_timezone (needs request.user)
    "alignment.middleware.WorkingTimezoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "alignment.urls"
WSGI_APPLICATION = "alignment.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                # the bell's unread count in the header (one COUNT, only where the bell is shown)
                "alignment.context_processors.notifications",
            ],
            # the app's one date/time format (local_datetime, company_datetime), in every template
            # and its one way to show money (money): a builtin too
            "builtins": ["alignment.templatetags.datetimes", "alignment.templatetags.money"],
        },
    },
]

DATABASES = {"default": env_database("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "alignment.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
# the company's zone: emails, tasks, anonymous pages; each person reads and types times in their
# own User.working_timezone (alignment.middleware)
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True
# the currency of every amount shown (deal values, pipeline): an ISO 4217 code such as EUR, USD
COMPANY_CURRENCY = env_str("COMPANY_CURRENCY", "EUR").strip().upper()
if len(COMPANY_CURRENCY) != 3 or not COMPANY_CURRENCY.isalpha():
    raise ImproperlyConfigured(
        f"COMPANY_CURRENCY={COMPANY_CURRENCY!r} is not a currency code: use three letters, e.g. EUR."
    )

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
MEDIA_ROOT = VAR_DIR / "media"
# the largest file the content library takes (a link serves anything bigger)
CONTENT_MAX_UPLOAD_BYTES = env_int("CONTENT_MAX_UPLOAD_BYTES", 25_000_000)

CACHE_URL = env_str("CACHE_URL", "")
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}
    if CACHE_URL
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
}

# Email: EMAIL_URL, default written to files under var/mail/.
globals().update(env_email("EMAIL_URL", f"file://{VAR_DIR / 'mail'}"))
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Lead pipeline <pipeline@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# Security: strict whenever DEBUG is off; each can be relaxed behind a TLS-terminating proxy.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# Celery: Redis when CELERY_BROKER_URL is set, otherwise kombu's filesystem transport under var/.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL == "filesystem://":
    _broker_dir = VAR_DIR / "broker"
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
else:
    # a web request that queues a task while the broker is down fails within a second instead of
    # retrying for seconds: what it queues is in the outbox (or resumed by beat), nothing is lost
    CELERY_BROKER_TRANSPORT_OPTIONS = {"max_retries": 1, "interval_start": 0, "interval_step": 0.5}
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND", "") or None
CELERY_TASK_IGNORE_RESULT = CELERY_RESULT_BACKEND is None
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
# the queue tasks go to and workers read (one queue; a separate deployment may name its own)
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_TASK_DEFAULT_QUEUE", "") or "celery"
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# The one place the periodic jobs are declared; django-celery-beat copies it into the database.
CELERY_BEAT_SCHEDULE = {
    # proves to /health/ that a worker is consuming the queue
    "worker-heartbeat": {
        "task": "alignment.tasks.worker_heartbeat",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    # hands committed lead events on to their reactions; the kick after each commit does it at
    # once, this picks up whatever a broker outage left behind
    "outbox-dispatch": {
        "task": "leads.outbox_dispatch",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    # sends the notification emails still due: the kick after each commit that notifies does it
    # at once, this retries failed sends and those whose kick or worker was lost
    "notifications-send": {
        "task": "alignment.notifications_send",
        "schedule": crontab(minute="*"),
        "options": {"expires": 55},
    },
    # SLA clocks past their warning point or due time are marked, notified once and escalated
    "sla-flag-breaches": {
        "task": "sla.flag_breaches",
        "schedule": crontab(minute="*"),
        "options": {"expires": 55},
    },
    # the weekly SLA report: hourly, because "Monday 08:00" is in the agreement's time zone
    # (not TIME_ZONE, and a new agreement version may change it); the task sends the previous
    # ISO week's report once it is Monday 08:00 there, once per recipient (a missed run is
    # caught up by the next one)
    "sla-weekly-report": {
        "task": "sla.weekly_report",
        "schedule": crontab(minute=5),
        "options": {"expires": 50 * 60},
    },
    # the KPI rollups rewritten from the event log: a safety net that also takes in history
    # written without reactions (kpis.rollups)
    "kpis-rebuild-rollups": {
        "task": "kpis.rebuild_rollups",
        "schedule": crontab(minute=40, hour=2),
        "options": {"expires": 3 * 3600},
    },
    # dispatched outbox entries older than a week are deleted (the events themselves stay)
    "outbox-prune": {
        "task": "leads.outbox_prune",
        "schedule": crontab(minute=20, hour=3),
        "options": {"expires": 3600},
    },
    # answers kept for Idempotency-Key retries are forgotten after 24 hours
    "idempotency-prune": {
        "task": "alignment.idempotency_prune",
        "schedule": crontab(minute=40),
        "options": {"expires": 3600},
    },
    # a rescore whose worker died or whose message the broker lost is queued again (runs resume
    # from their last batch; a run still in progress is claimed and left alone)
    "scoring-rescore-resume": {
        "task": "leads.scoring_runs_resume",
        "schedule": crontab(minute="*/15"),
        "options": {"expires": 10 * 60},
    },
    # an import whose worker died (heartbeat stale) or whose message the broker lost is queued
    # again; someone is watching its page, so this runs often (a job still running is left alone)
    "leads-import-resume": {
        "task": "leads.import_jobs_resume",
        "schedule": crontab(minute="*/5"),
        "options": {"expires": 4 * 60},
    },
    # fine-tuning proposes (never activates) a version learned from last week's outcomes: won vs
    # lost, and sales' accept vs reject decisions; both managers then review it
    "scoring-tune-won": {
        "task": "leads.scoring_tune",
        "schedule": crontab(minute=0, hour=4, day_of_week="mon"),
        "kwargs": {"outcome": "won"},
        "options": {"expires": 6 * 3600},
    },
    "scoring-tune-accepted": {
        "task": "leads.scoring_tune",
        "schedule": crontab(minute=30, hour=4, day_of_week="mon"),
        "kwargs": {"outcome": "accepted"},
        "options": {"expires": 6 * 3600},
    },
    # webhook deliveries whose retry is due (or whose kick after commit was lost) are queued
    "webhooks-retry-due": {
        "task": "webhooks.retry_due",
        "schedule": crontab(minute="*"),
        "options": {"expires": 55},
    },
    # webhook deliveries finished more than 30 days ago leave the delivery log
    "webhooks-prune": {
        "task": "webhooks.prune",
        "schedule": crontab(minute=50, hour=3),
        "options": {"expires": 3600},
    },
}
# What reacts to which lead event after commit: event type -> dotted paths of reactions, each
# called with the LeadEvent by the outbox dispatcher (leads.events), once per event.
OUTBOX_REACTIONS: dict[str, list[str]] = {
    # celebrate together: a won customer is announced to marketing
    "lead.won": ["leads.announcements.won_reaction"],
    # a newly active scoring model rescores every lead (and qualifies those that now cross)
    "scoring.activated": ["leads.scoring.tasks.activation_reaction"],
    # SLA clocks start when an MQL is assigned, end on the owner's first touch, a decision, a
    # recycle or a merge (only sales touches: marketing ones never end a clock)
    # the KPI rollup: the lead's stage stays, rewritten from its events (kpis.rollups); also
    # when its source, campaign or owner (the rows' filters) may have changed
    "lead.created": ["kpis.rollups.services.stays_reaction"],
    "lead.updated[source_or_campaign]": ["kpis.rollups.services.stays_reaction"],
    "lead.assigned": [
        "sla.clocks.services.clock_reaction",
        "kpis.rollups.services.stays_reaction",
    ],
    "lead.stage_changed": [
        "sla.clocks.services.clock_reaction",
        "kpis.rollups.services.stays_reaction",
    ],
    "lead.merged": [
        "sla.clocks.services.clock_reaction",
        "kpis.rollups.services.stays_reaction",
    ],
    "touchpoint.recorded[sales]": ["sla.clocks.services.clock_reaction"],
    # a content download naming a library asset links it to the asset (an "engaged" use)
    "touchpoint.recorded[content]": ["content.sharing.asset_engaged_reaction"],
    # every event type: one signed webhook delivery per subscribed endpoint (alignment.webhooks)
    "*": ["alignment.webhooks.services.webhooks_reaction"],
}
# A reaction that wants only some events names a gate here: a function returning the event types
# it wants now, asked once per write (one query), so that the ten million touchpoints nobody
# subscribed to queue nothing for it.
OUTBOX_REACTION_GATES: dict[str, str] = {
    "alignment.webhooks.services.webhooks_reaction": "alignment.webhooks.services.webhook_event_types",
}
# webhooks may reach private and loopback addresses (always allowed with DEBUG); off in production
WEBHOOKS_ALLOW_PRIVATE = env_bool("WEBHOOKS_ALLOW_PRIVATE", False)
# an endpoint is disabled once this many of its deliveries in a row have failed every attempt
WEBHOOKS_DISABLE_AFTER = env_int("WEBHOOKS_DISABLE_AFTER", 5)
HEARTBEAT_STALE_SECONDS = env_int("HEARTBEAT_STALE_SECONDS", 180)
# /health/ reports "degraded" when an undispatched outbox entry is older than this
OUTBOX_STALE_SECONDS = env_int("OUTBOX_STALE_SECONDS", 300)
# attributes fine-tuning must never learn from (besides any named post_...), e.g. call_duration
SCORING_TUNING_EXCLUDE_ATTRIBUTES = env_list("SCORING_TUNING_EXCLUDE_ATTRIBUTES", [])

# requests per key (or per signed-in person) and period: "600/min", "50/s", "10000/hour"
API_THROTTLE_RATE = env_str("API_THROTTLE_RATE", "600/min")
REST_FRAMEWORK = {
    # integrations send a bearer API key; the dashboard's own calls use the session (with CSRF)
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "alignment.api_auth.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "alignment.api_auth.ScopePermission",
    ],
    "DEFAULT_THROTTLE_CLASSES": ["alignment.api_auth.ApiKeyThrottle"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "alignment.api.ScopedAutoSchema",
    "EXCEPTION_HANDLER": "alignment.api.exception_handler",
    "DEFAULT_PAGINATION_CLASS": "alignment.api_defaults.StrictLimitOffsetPagination",
    "DEFAULT_METADATA_CLASS": "alignment.api_defaults.ApiMetadata",
    "PAGE_SIZE": 50,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Lead pipeline API",
    "DESCRIPTION": "One lead record, one scoring model and one SLA for sales and marketing.",
    "VERSION": "1",
    # the API docs page serves Swagger UI from the app itself, never from a CDN
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # one name per enum where several models share a field name
    "ENUM_NAME_OVERRIDES": {
        "VersionStatusEnum": "alignment.signoff.VersionStatus",
        "SlaClockStatusEnum": "sla.clocks.models.ClockStatus",
        "SlaClockKindEnum": "sla.clocks.models.ClockKind",
        "ScoringOriginEnum": "leads.scoring.models.ModelOrigin",
        "StageEnum": "leads.models.Stage",
        "EventTypeEnum": "leads.models.EventType",
        "ContentRequestStatusEnum": "content.models.RequestStatus",
        "FlagStatusEnum": "content.models.FlagStatus",
        "ObjectionKindEnum": "content.models.ObjectionKind",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "alignment.api.problem_responses",
    ],
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
