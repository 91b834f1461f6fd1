"""Serving the content library's uploaded files to the team."""

from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, render

from alignment.decorators import team_member_required
from content.models import Asset

# shown in the browser; everything else is downloaded
INLINE = frozenset({"application/pdf", "image/png", "image/jpeg", "video/mp4"})


@team_member_required
def asset_file(request, pk: int):
    """The asset's file with the type detected at upload (never a guess from its name), sandboxed
    so that nothing in it runs on the app's origin."""
    asset = get_object_or_404(Asset, pk=pk)
    if not asset.file:
        raise Http404("This asset is a link, not an uploaded file.")
    response = FileResponse(
        asset.file.open("rb"),
        content_type=asset.content_type,
        as_attachment=asset.content_type not in INLINE,
        filename=asset.file_name or None,
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "sandbox; default-src 'none'"
    response["Cache-Control"] = "private, max-age=3600"
    return response


@team_member_required
def library(request):
    """(being built: the library page)"""
    return render(request, "content/library.html", {})
