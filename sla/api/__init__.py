"""The alignment agreement and the SLA clocks over REST (read only, scope `sla:read`).

Signing an agreement stays on the agreement pages: the API's scopes have none for it."""

from django.urls import path

from sla.api.agreements import AgreementActiveView, AgreementDetailView, AgreementListView
from sla.api.clocks import ClockListView

urlpatterns = [
    path("agreement/", AgreementActiveView.as_view(), name="api-sla-agreement"),
    path("agreements/", AgreementListView.as_view(), name="api-sla-agreements"),
    path("agreements/<int:pk>/", AgreementDetailView.as_view(), name="api-sla-agreement-detail"),
    path("clocks/", ClockListView.as_view(), name="api-sla-clocks"),
]
