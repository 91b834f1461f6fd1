from django.urls import path

from content.flags import views

# mounted at /content/flags/ in the `content` namespace
urlpatterns = [
    path("", views.flags_page, name="flags"),
    path("lead/<int:pk>/", views.flag_raise_view, name="flag_raise"),
    path("<int:pk>/comment/", views.flag_comment_view, name="flag_comment"),
    path("<int:pk>/resolve/", views.flag_resolve_view, name="flag_resolve"),
    path("<int:pk>/reopen/", views.flag_reopen_view, name="flag_reopen"),
]
