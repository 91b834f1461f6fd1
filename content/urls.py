from django.urls import include, path

from content import views

app_name = "content"
urlpatterns = [
    path("", views.library, name="library"),
    path("new/", views.asset_new, name="asset_new"),
    path("<int:pk>/", views.asset_detail, name="asset"),
    path("<int:pk>/edit/", views.asset_edit, name="asset_edit"),
    path("<int:pk>/share/", views.asset_share_view, name="asset_share"),
    path("<int:pk>/file/", views.asset_file, name="asset_file"),
    # each loop keeps its pages in its package; their names are content:<name>
    path("requests/", include("content.requests.urls")),
    path("voice/", include("content.voice.urls")),
    path("flags/", include("content.flags.urls")),
    path("stories/", include("content.stories.urls")),
]
