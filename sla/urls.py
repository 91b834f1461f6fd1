from django.urls import path

from sla import views

app_name = "sla"
urlpatterns = [
    path("agreement/", views.agreement, name="agreement"),
    path("agreement/history/", views.agreement_history, name="agreement_history"),
    path("agreement/new/", views.agreement_new, name="agreement_new"),
    path("agreement/<int:pk>/", views.agreement_version, name="agreement_version"),
    path("agreement/<int:pk>/edit/", views.agreement_edit, name="agreement_edit"),
    path("agreement/<int:pk>/<slug:action>/", views.agreement_decide, name="agreement_decide"),
]
