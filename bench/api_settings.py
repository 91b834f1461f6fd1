"""bench/api.py's settings: the project's own, plus one minimal JSON view (the ceiling)."""

from alignment.settings import *  # noqa: F403

ROOT_URLCONF = "bench.api_urls"
