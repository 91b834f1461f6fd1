from leads.api import bulk, events, leads, pipeline, touchpoints

# bulk and the external-id routes come before leads/<id>/ so that "bulk" is never read as an id
urlpatterns = [
    *bulk.urlpatterns,
    *leads.urlpatterns,
    *touchpoints.urlpatterns,
    *pipeline.urlpatterns,
    *events.urlpatterns,
]
