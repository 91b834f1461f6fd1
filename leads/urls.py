from django.urls import include, path

from leads import views

app_name = "leads"
urlpatterns = [
    path("", views.lead_list, name="list"),
    path("import/", include("leads.importing.urls")),
]
