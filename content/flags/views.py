"""Lead flags' pages: marketing's list at /content/flags/ and the posts of the lead page's flag
card (content.templatetags.content_flags shows it). A refusal re-renders the form on a small page
of its own with a back link; a success goes back to the lead's #flags."""

from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from alignment.decorators import team_member_required
from alignment.lib.errors import DomainError
from content.flags.forms import FlagCommentForm, FlagRaiseForm, FlagResolveForm
from content.flags.services import flag_comment, flag_raise, flag_reopen, flag_resolve
from content.models import FlagMessage, FlagReason, FlagStatus, LeadFlag
from content.templatetags.content_flags import flag_item, flags_card, flags_with_thread
from kpis.selectors.flags import open_flags
from leads.models import Lead

MAX_ID = 2**63 - 1
RESOLVED_LISTED = 50
STATUSES = {"open": "Open", "resolved": "Resolved", "all": "All"}


def _back(lead: Lead) -> str:
    return reverse("leads:detail", args=[lead.pk]) + "#flags"


def _page(request, *, lead: Lead | None, card=None, item=None, message="", status=400):
    return render(
        request,
        "content/flags_form.html",
        {"lead": lead, "card": card, "item": item, "message": message},
        status=status,
    )


def _gone(request):
    return _page(
        request,
        lead=None,
        message="This lead or flag no longer exists (merged or removed). Go back and try again.",
        status=404,
    )


def _flag(pk: int) -> LeadFlag | None:
    if not 0 < pk <= MAX_ID:
        return None
    return flags_with_thread().select_related("lead", "lead__campaign").filter(pk=pk).first()


def _error(form, exc: DomainError) -> None:
    form.add_error(exc.field if exc.field in form.fields else None, exc.message)


@team_member_required
@require_POST
def flag_raise_view(request, pk: int):
    lead = Lead.objects.filter(pk=pk).first() if 0 < pk <= MAX_ID else None
    if lead is None:
        return _gone(request)
    form = FlagRaiseForm(request.POST)
    if form.is_valid():
        try:
            flag_raise(
                lead=lead,
                by=request.user,
                reason=form.cleaned_data["reason"],
                comment=form.cleaned_data["comment"],
            )
        except DomainError as exc:
            _error(form, exc)
        else:
            messages.success(request, "Flagged: marketing is told and will answer in the thread.")
            return redirect(_back(lead))
    card = flags_card(lead=lead, user=request.user, raise_form=form)
    refusal = "" if card.can_raise else " ".join(e for es in form.errors.values() for e in es)
    return _page(request, lead=lead, card=card, message=refusal)


def _flag_post(request, pk: int, *, name: str, make_form, act, done: str):
    flag = _flag(pk)
    if flag is None:
        return _gone(request)
    lead = flag.lead
    form = make_form(flag, request.POST)
    if form.is_valid():
        try:
            act(flag, form.cleaned_data)
        except DomainError as exc:
            _error(form, exc)
        else:
            messages.success(request, done)
            return redirect(reverse("leads:detail", args=[lead.pk]) + f"#flag-{flag.pk}")
    item = flag_item(flag, lead=lead, user=request.user, bound={name: form})
    allowed = getattr(item, f"{name}_form") is form
    refusal = "" if allowed else " ".join(e for es in form.errors.values() for e in es)
    return _page(request, lead=lead, item=item, message=refusal)


@team_member_required
@require_POST
def flag_comment_view(request, pk: int):
    return _flag_post(
        request,
        pk,
        name="comment",
        make_form=lambda f, data: FlagCommentForm(data, flag_id=f.pk),
        act=lambda f, d: flag_comment(flag=f, by=request.user, body=d["body"]),
        done="Your reply is in the thread.",
    )


@team_member_required
@require_POST
def flag_resolve_view(request, pk: int):
    return _flag_post(
        request,
        pk,
        name="resolve",
        make_form=lambda f, data: FlagResolveForm(data, flag_id=f.pk),
        act=lambda f, d: flag_resolve(
            flag=f, by=request.user, outcome=d["outcome"], resolution=d["resolution"]
        ),
        done="The flag is resolved; whoever flagged it is told.",
    )


@team_member_required
@require_POST
def flag_reopen_view(request, pk: int):
    return _flag_post(
        request,
        pk,
        name="reopen",
        make_form=lambda f, data: FlagCommentForm(
            data, flag_id=f.pk, label="Not settled? Say why and reopen it"
        ),
        act=lambda f, d: flag_reopen(flag=f, by=request.user, body=d["body"]),
        done="The flag is open again; marketing is told.",
    )


@team_member_required
@require_GET
def flags_page(request):
    status = request.GET.get("status") or "open"
    if status not in STATUSES:
        status = "open"
    reason = request.GET.get("reason") or ""
    if reason not in FlagReason.values:
        reason = ""
    rows = []
    if status in ("open", "all"):
        rows = [o for o in open_flags(at=timezone.now()) if not reason or o.flag.reason == reason]
    resolved = []
    if status in ("resolved", "all"):
        qs = (
            LeadFlag.objects.filter(status=FlagStatus.RESOLVED)
            .select_related("lead", "lead__owner", "lead__campaign", "raised_by", "resolved_by")
            .order_by("-resolved_at", "-id")
        )
        if reason:
            qs = qs.filter(reason=reason)
        resolved = list(qs[:RESOLVED_LISTED])
    flags = [o.flag for o in rows] + resolved
    last = {}
    for message in (
        FlagMessage.objects.filter(flag__in=flags).select_related("author").order_by("created_at")
    ):
        last[message.flag_id] = message
    return render(
        request,
        "content/flags.html",
        {
            "rows": [(o, last.get(o.flag.pk)) for o in rows],
            "resolved": [(f, last.get(f.pk)) for f in resolved],
            "status": status,
            "reason": reason,
            "statuses": STATUSES.items(),
            "reasons": FlagReason.choices,
            "resolved_listed": RESOLVED_LISTED,
        },
    )
