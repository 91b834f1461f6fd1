"""The content request pages: /content/requests/ (the list, sorted by votes, with the short form
to ask) and /content/requests/<id>/ (details, the comment thread, marketing's decision). Every
write goes through content.requests.services; a refusal becomes a form error on the page."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from alignment.decorators import team_member_required
from alignment.lib.errors import DomainError
from alignment.permissions import Action, can
from content.models import ContentRequest, ContentRequestVote, RequestStatus
from content.requests import services
from content.requests.forms import STATUS_FILTERS, CommentForm, RequestForm, StatusForm

LISTED = 200


def _filtered(status: str):
    qs = ContentRequest.objects.select_related("requested_by", "asset").annotate(
        comment_count=Count("comments")
    )
    if status == "active":
        qs = qs.filter(status__in=services.VOTABLE)
    elif status != "all":
        qs = qs.filter(status=status)
    return qs.order_by("-vote_count", "-created_at", "-id")


def _voted(user, ids) -> set[int]:
    return set(
        ContentRequestVote.objects.filter(user=user, request_id__in=ids).values_list(
            "request_id", flat=True
        )
    )


def _list_page(request, *, form: RequestForm, status: int = 200):
    wanted = request.GET.get("status", "active")
    if wanted not in dict(STATUS_FILTERS):
        wanted = "active"
    rows = list(_filtered(wanted)[: LISTED + 1])
    counts = dict(ContentRequest.objects.values_list("status").annotate(n=Count("id")).order_by())
    return render(
        request,
        "content/requests.html",
        {
            "form": form,
            "rows": rows[:LISTED],
            "more": len(rows) > LISTED,
            "voted": _voted(request.user, [r.pk for r in rows]),
            "status": wanted,
            "filters": [
                (
                    key,
                    label,
                    sum(counts.get(s, 0) for s in services.VOTABLE)
                    if key == "active"
                    else sum(counts.values())
                    if key == "all"
                    else counts.get(key, 0),
                )
                for key, label in STATUS_FILTERS
            ],
            "can_request": can(request.user, Action.CONTENT_REQUEST),
        },
        status=status,
    )


@team_member_required
def requests_list(request):
    if request.method != "POST":
        return _list_page(request, form=RequestForm())
    form = RequestForm(request.POST)
    if form.is_valid():
        try:
            made = services.content_request_create(by=request.user, **form.cleaned_data)
        except DomainError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            messages.success(request, "Your request is in: marketing has been told.")
            return redirect("content:request", pk=made.pk)
    return _list_page(request, form=form, status=400)


def _detail_page(request, item: ContentRequest, *, status: int = 200, **forms):
    comment_form = forms.get("comment_form") or CommentForm()
    status_form = forms.get("status_form") or StatusForm(
        initial={"status": item.status, "note": item.status_note, "asset": item.asset_id}
    )
    return render(
        request,
        "content/requests_detail.html",
        {
            "item": item,
            "comments": item.comments.select_related("author"),
            "voters": [v.user for v in item.votes.select_related("user").order_by("created_at")],
            "voted": bool(_voted(request.user, [item.pk])),
            "votable": item.status in services.VOTABLE,
            "comment_form": comment_form,
            "status_form": status_form,
            "can_request": can(request.user, Action.CONTENT_REQUEST),
            "can_manage": can(request.user, Action.CONTENT_MANAGE),
        },
        status=status,
    )


def _item(pk: int) -> ContentRequest:
    return get_object_or_404(
        ContentRequest.objects.select_related("requested_by", "decided_by", "asset"), pk=pk
    )


@team_member_required
def request_detail(request, pk: int):
    return _detail_page(request, _item(pk))


@team_member_required
@require_POST
def request_vote(request, pk: int):
    item = _item(pk)
    try:
        if request.POST.get("action") == "unvote":
            services.content_request_unvote(request=item, by=request.user)
            messages.success(request, "Your vote is taken back.")
        else:
            services.content_request_vote(request=item, by=request.user)
            messages.success(request, "Voted: marketing sees it.")
    except DomainError as exc:
        messages.error(request, exc.message)
    if request.POST.get("next") == "list":
        return redirect("content:requests")
    return redirect("content:request", pk=item.pk)


@team_member_required
@require_POST
def request_comment(request, pk: int):
    item = _item(pk)
    form = CommentForm(request.POST)
    if form.is_valid():
        try:
            services.content_request_comment(
                request=item, by=request.user, body=form.cleaned_data["body"]
            )
        except DomainError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            messages.success(request, "Comment added.")
            return redirect("content:request", pk=item.pk)
    return _detail_page(request, item, status=400, comment_form=form)


@team_member_required
@require_POST
def request_status(request, pk: int):
    item = _item(pk)
    if not can(request.user, Action.CONTENT_MANAGE):
        raise PermissionDenied("Only marketing (and admins) plan, finish and decline requests.")
    form = StatusForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            services.content_request_update(
                request=item,
                by=request.user,
                status=data["status"],
                note=data["note"],
                asset=data["asset"] if data["status"] == RequestStatus.DONE else None,
            )
        except DomainError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            messages.success(request, f"The request is now {item.get_status_display().lower()}.")
            return redirect("content:request", pk=item.pk)
    return _detail_page(request, item, status=400, status_form=form)
