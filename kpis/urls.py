from django.urls import path

from kpis import views

app_name = "kpis"

urlpatterns = [
    path("", views.kpi_page, name="page"),
]
