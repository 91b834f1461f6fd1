from django.urls import path

from content import views

app_name = "content"
urlpatterns = [
    path("<int:pk>/file/", views.asset_file, name="asset_file"),
]
