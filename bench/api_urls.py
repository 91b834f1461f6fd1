"""The project's URLs and /bench/ping/: the least a Django view can do, for bench/api.py."""

from django.http import JsonResponse
from django.urls import include, path


def ping(request):
    return JsonResponse({"ok": True})


urlpatterns = [path("bench/ping/", ping), path("", include("alignment.urls"))]
