import gc
import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "alignment.settings")
application = get_wsgi_application()

# Load every view module now rather than on a worker's first request, then keep the start-up
# heap out of the garbage collector: a full collection over it cost ~110 ms every few bulk
# requests (gunicorn forks the workers after this, so they share these pages too).
get_resolver().url_patterns  # noqa: B018 (imports the URL modules)
gc.freeze()
