from django.urls import path

from content.stories import views

# mounted at /content/stories/ in the `content` namespace
urlpatterns = [path("record/", views.story_record_view, name="story_record")]
