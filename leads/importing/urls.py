from django.urls import path

from leads.importing import views

urlpatterns = [
    path("", views.import_upload, name="import"),
    path("<int:pk>/", views.import_job, name="import_job"),
    path("<int:pk>/status/", views.import_status, name="import_status"),
]
