"""The content library and the feedback loops over REST, under /api/v1/ with the rest: assets
(`content:read`/`content:write`), content requests (the same scopes), objections, lead flags and
win/loss stories (`feedback:read`/`feedback:write`). Each part keeps its views in its module."""

from content.api import assets, flags, objections, requests, stories

urlpatterns = [
    *assets.urlpatterns,
    *requests.urlpatterns,
    *objections.urlpatterns,
    *flags.urlpatterns,
    *stories.urlpatterns,
]
