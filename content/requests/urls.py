from django.urls import path

from content.requests import views

# mounted at /content/requests/ in the `content` namespace
urlpatterns = [
    path("", views.requests_list, name="requests"),
    path("<int:pk>/", views.request_detail, name="request"),
    path("<int:pk>/vote/", views.request_vote, name="request_vote"),
    path("<int:pk>/comment/", views.request_comment, name="request_comment"),
    path("<int:pk>/status/", views.request_status, name="request_status"),
]
