from django.urls import path

from alignment.webhooks import views

app_name = "webhooks"

urlpatterns = [
    path("", views.endpoints_page, name="list"),
    path("new/", views.endpoint_create_view, name="create"),
    path("<int:pk>/", views.endpoint_page, name="detail"),
    path("<int:pk>/edit/", views.endpoint_edit_view, name="edit"),
    path("<int:pk>/delete/", views.endpoint_delete_view, name="delete"),
    path("<int:pk>/test/", views.endpoint_test_view, name="test"),
    path("<int:pk>/rotate-secret/", views.endpoint_rotate_view, name="rotate"),
    path(
        "<int:pk>/deliveries/<int:delivery_id>/resend/",
        views.delivery_resend_view,
        name="resend",
    ),
]
