from django.urls import path

from leads.scoring import tuning_views

# included at /leads/scoring/tuning/ inside the `leads` namespace
urlpatterns = [
    path("", tuning_views.tuning, name="tuning"),
]
