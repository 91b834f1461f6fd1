from django.urls import path

from leads.people import views

app_name = "people"

urlpatterns = [
    path("", views.people_page, name="page"),
    path("me/", views.me, name="me"),
    path("reps/<int:pk>/", views.rep_edit, name="rep_edit"),
    path("reps/<int:pk>/availability/", views.rep_availability, name="rep_availability"),
    path("rules/new/", views.rule_new, name="rule_new"),
    path("rules/<int:pk>/", views.rule_edit, name="rule_edit"),
    path("rules/<int:pk>/delete/", views.rule_delete, name="rule_delete"),
    path("rules/<int:pk>/move/", views.rule_move, name="rule_move"),
    path("rules/<int:pk>/activate/", views.rule_activate, name="rule_activate"),
]
