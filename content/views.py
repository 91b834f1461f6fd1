"""The content library's pages: the library, an asset's page, adding and changing an asset
(marketing), sharing one with a lead (sales, from the lead page), and serving uploaded files."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST
from rest_framework import exceptions

from alignment.decorators import team_member_required
from alignment.lib.errors import DomainError
from alignment.permissions import Action, can
from content.forms import AssetForm, LibraryFilterForm, ShareForm
from content.library import assets_filtered, recent_shares, sales_ready_by_default
from content.models import Asset
from content.services import asset_create, asset_update
from content.sharing import asset_link, asset_share
from leads.api.pagination import Keyset
from leads.models import Lead

# shown in the browser; everything else is downloaded
INLINE = frozenset({"application/pdf", "image/png", "image/jpeg", "video/mp4"})
PAGE_SIZE = 50
LIBRARY_ORDER = Keyset("-updated_at")


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
    """Every asset, filtered; sales see the sales-ready ones unless they ask for all. 50 a page,
    newest change first, by keyset (the `cursor` parameter)."""
    form = LibraryFilterForm(
        request.GET or None, ready_default=sales_ready_by_default(request.user)
    )
    qs = assets_filtered(form.asset_filter())
    cursor = request.GET.get("cursor") or None
    try:
        rows, next_cursor = LIBRARY_ORDER.page(qs, cursor=cursor, size=PAGE_SIZE)
    except exceptions.ValidationError:
        rows, next_cursor = LIBRARY_ORDER.page(qs, cursor=None, size=PAGE_SIZE)
        cursor = None
    params = request.GET.copy()
    params.pop("cursor", None)
    query = params.urlencode()
    return render(
        request,
        "content/library.html",
        {
            "form": form,
            "assets": [(asset, asset_link(asset)) for asset in rows],
            "next_cursor": next_cursor,
            "paged": cursor is not None,
            "query": query,
            "can_manage": can(request.user, Action.CONTENT_MANAGE),
        },
    )


@team_member_required
def asset_detail(request, pk: int):
    asset = get_object_or_404(Asset.objects.select_related("owner", "campaign"), pk=pk)
    return render(
        request,
        "content/asset_detail.html",
        {
            "asset": asset,
            "link": asset_link(asset),
            "shares": recent_shares(asset),
            "can_manage": can(request.user, Action.CONTENT_MANAGE),
        },
    )


def _asset_form_page(request, *, asset: Asset | None):
    if not can(request.user, Action.CONTENT_MANAGE):
        raise PermissionDenied("Only marketing (and admins) add and change library assets.")
    if request.method == "POST":
        form = AssetForm(request.POST, request.FILES)
        if form.is_valid():
            upload = form.cleaned_data.get("file")
            try:
                if asset is None:
                    saved = asset_create(by=request.user, data=form.service_data(), upload=upload)
                    message = f"“{saved.title}” is in the library."
                else:
                    saved = asset_update(
                        asset=asset, by=request.user, data=form.service_data(), upload=upload
                    )
                    message = f"“{saved.title}” is saved."
            except DomainError as exc:
                form.add_error(exc.field if exc.field in form.fields else None, exc.message)
            else:
                messages.success(request, message)
                return redirect("content:asset", pk=saved.pk)
    else:
        form = AssetForm(initial=AssetForm.initial_of(asset) if asset else None)
    return render(
        request,
        "content/asset_form.html",
        {"form": form, "asset": asset},
        status=400 if form.is_bound and form.errors else 200,
    )


@team_member_required
def asset_new(request):
    return _asset_form_page(request, asset=None)


@team_member_required
def asset_edit(request, pk: int):
    return _asset_form_page(request, asset=get_object_or_404(Asset, pk=pk))


@team_member_required
@require_POST
def asset_share_view(request, pk: int):
    """Share from the lead page (form field `lead`): back to the lead page with a message."""
    asset = get_object_or_404(Asset, pk=pk)
    form = ShareForm(request.POST)
    lead = None
    if form.is_valid():
        lead = Lead.objects.filter(pk=form.cleaned_data["lead"]).first()
    if lead is None:
        messages.error(request, "Pick a lead to share this asset with (from the lead's page).")
        return redirect("content:asset", pk=asset.pk)
    try:
        asset_share(asset=asset, lead=lead, by=request.user, note=form.cleaned_data["note"])
    except DomainError as exc:
        messages.error(request, f"Not shared: {exc.message}")
    else:
        messages.success(
            request,
            f"“{asset.title}” is shared with {lead.display_name}: it is on the lead's timeline.",
        )
    return redirect(reverse("leads:detail", kwargs={"pk": lead.pk}) + "#suggested-content")
