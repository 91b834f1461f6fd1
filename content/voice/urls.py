"""Voice of the prospect, mounted at /content/voice/ (names content:voice, content:voice_log,
content:voice_answer)."""

from django.urls import path

from content.voice import views

urlpatterns = [
    path("", views.voice, name="voice"),
    path("log/", views.voice_log, name="voice_log"),
    path("<int:pk>/answer/", views.voice_answer, name="voice_answer"),
]
