from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from alignment import api, health, home, views

urlpatterns = [
    path("", home.home, name="home"),
    path("health/", health.health, name="health"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("leads/", include("leads.urls")),
    path("sla/queue/", include("sla.queue_urls")),
    path("sla/reports/", include("sla.report.urls")),
    path("sla/", include("sla.urls")),
    path("notifications/", views.notifications_page, name="notifications"),
    path("notifications/<int:pk>/open/", views.notification_open, name="notification_open"),
    path(
        "notifications/read-all/", views.notifications_read_all_view, name="notifications_read_all"
    ),
    path("webhooks/", include("alignment.webhooks.urls")),
    path("api-keys/", views.api_keys_page, name="api_keys"),
    path("api-keys/<int:pk>/revoke/", views.api_key_revoke_view, name="api_key_revoke"),
    path("kpis/", include("kpis.urls")),
    path("content/", include("content.urls")),
    path("people/", include("leads.people.urls")),
    path("api/v1/", api.ApiIndexView.as_view(), name="api-index"),
    path("api/v1/me/", api.MeView.as_view(), name="api-me"),
    path("api/v1/", include("leads.api.urls")),
    path("api/v1/scoring/", include("leads.scoring.api")),
    path("api/v1/sla/", include("sla.api")),
    path("api/v1/kpis/", include("kpis.api")),
    path("api/v1/webhooks/", include("alignment.webhooks.api")),
    path("api/v1/", include("content.api.urls")),
    path("api/v1/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/v1/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    # last: any other URL under /api/ is a 404 problem, not Django's page listing every URL
    re_path(r"^api/", api.NotFoundView.as_view()),
]

handler500 = "alignment.api.server_error"
