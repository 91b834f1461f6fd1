from django.urls import path, re_path

from sla.report import views

app_name = "sla_report"
urlpatterns = [
    path("", views.report_list, name="list"),
    path("preview/", views.report_preview, name="preview"),
    path("marketing/", views.marketing_side, name="marketing"),
    re_path(r"^(?P<week>\d{4}-W\d{2})/$", views.report_detail, name="detail"),
]
