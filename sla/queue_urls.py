from django.urls import path

from sla import queue_views

app_name = "sla_queue"
urlpatterns = [
    path("", queue_views.queue_page, name="queue"),
    path("<int:pk>/accept/", queue_views.queue_accept, name="accept"),
    path("<int:pk>/reject/", queue_views.queue_reject, name="reject"),
    path("<int:pk>/touch/", queue_views.queue_touch, name="touch"),
]
