"""The leads REST API under /api/v1/: leads, bulk ingest, touchpoints, pipeline actions and the
event feed. Each module owns its views and `urlpatterns`; urls.py joins them."""
