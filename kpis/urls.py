from django.urls import path

from kpis import goal_views, views

app_name = "kpis"

urlpatterns = [
    path("", views.kpi_page, name="page"),
    path("goals/", goal_views.goal_list, name="goals"),
    path("goals/<int:pk>/", goal_views.goal_edit, name="goal_edit"),
    path("goals/<int:pk>/delete/", goal_views.goal_delete, name="goal_delete"),
]
