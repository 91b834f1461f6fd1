from django.urls import include, path

from leads import list_views, views
from leads.scoring import views as scoring_views
from leads.scoring.preview_views import scoring_model_edit_preview

app_name = "leads"
urlpatterns = [
    path("", list_views.lead_list, name="list"),
    path("export/", list_views.lead_export, name="export"),
    path("new/", list_views.lead_create, name="create"),
    path("bulk/assign/", list_views.lead_bulk_assign, name="bulk_assign"),
    path("bulk/recycle/", list_views.lead_bulk_recycle, name="bulk_recycle"),
    path("<int:pk>/edit/", list_views.lead_edit, name="edit"),
    path("<int:pk>/", views.lead_detail, name="detail"),
    path("<int:pk>/move/", views.lead_move, name="move"),
    path("<int:pk>/touchpoints/", views.lead_touchpoint, name="touchpoint"),
    path("<int:pk>/assign/", views.lead_assign, name="assign"),
    path("<int:pk>/merge/", views.lead_merge, name="merge"),
    path("feedback/", views.sales_feedback, name="feedback"),
    path("wins/", views.announcements, name="announcements"),
    path("import/", include("leads.importing.urls")),
    path("scoring/", scoring_views.scoring_models, name="scoring"),
    path("scoring/<int:pk>/", scoring_views.scoring_model, name="scoring_model"),
    path(
        "scoring/<int:pk>/preview/",
        scoring_views.scoring_model_preview,
        name="scoring_model_preview",
    ),
    path("scoring/<int:pk>/copy/", scoring_views.scoring_model_copy, name="scoring_model_copy"),
    path("scoring/<int:pk>/edit/", scoring_views.scoring_model_edit, name="scoring_model_edit"),
    path("scoring/<int:pk>/edit/preview/", scoring_model_edit_preview, name="scoring_edit_preview"),
    path(
        "scoring/<int:pk>/discard/",
        scoring_views.scoring_model_discard,
        name="scoring_model_discard",
    ),
    path(
        "scoring/<int:pk>/<slug:action>/",
        scoring_views.scoring_model_decide,
        name="scoring_model_decide",
    ),
    path("scoring/tuning/", include("leads.scoring.tuning_urls")),
]
