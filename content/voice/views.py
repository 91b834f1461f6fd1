"""Voice of the prospect's pages: logging what a prospect said (from the lead page or the
queue, one step), marketing's view of the top categories, competitors and quotes by period and
segment, and linking the asset that answers a quote."""

from zoneinfo import ZoneInfo

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from alignment.decorators import team_member_required
from alignment.lib.errors import DomainError
from alignment.permissions import Action, can
from content.models import Asset, Objection
from content.voice.forms import AnswerForm, ObjectionLogForm, VoiceFilterForm
from content.voice.services import objection_answer, objection_log
from kpis.selectors.goals import goals_timezone
from kpis.selectors.periods import iso_week_of
from kpis.selectors.voice import (
    SEGMENTS,
    objection_categories,
    objection_competitors,
    recent_objections,
)
from leads.models import Lead

QUOTES = 30


def safe_next(request, url: str | None) -> str | None:
    """`url` when it is a local address on this site (the queue, a lead page), else None."""
    if not url or not url.startswith("/") or url.startswith("//"):
        return None
    if not url_has_allowed_host_and_scheme(
        url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return None
    return url


def _lead_url(lead: Lead) -> str:
    return reverse("leads:detail", kwargs={"pk": lead.pk}) + "#voice"


@team_member_required
@require_POST
def voice_log(request):
    """Log a question or objection (field `lead`; `next` a local address to go back to)."""
    form = ObjectionLogForm(request.POST)
    back = safe_next(request, request.POST.get("next"))
    lead = None
    raw_lead = str(request.POST.get("lead") or "")
    if raw_lead.isdigit() and len(raw_lead) < 19:
        lead = Lead.objects.filter(pk=int(raw_lead)).first()
    if form.is_valid():
        data = form.cleaned_data
        if lead is None:
            form.add_error(None, "There is no such lead: log it from the lead's page.")
        else:
            try:
                objection_log(
                    lead=lead,
                    by=request.user,
                    kind=data["kind"],
                    category=data["category"],
                    competitor=data["competitor"],
                    text=data["text"],
                )
            except DomainError as exc:
                field = (
                    exc.field if exc.field in ("kind", "category", "competitor", "text") else None
                )
                form.add_error(field, exc.message)
            else:
                word = "question" if data["kind"] == "question" else "objection"
                messages.success(
                    request,
                    f"The {word} is logged on {lead.display_name}: marketing sees it on the "
                    "Voice of the prospect page.",
                )
                return redirect(back or _lead_url(lead))
    return render(
        request,
        "content/voice_log.html",
        {
            "form": form,
            "lead": lead,
            "back": back or (_lead_url(lead) if lead else reverse("sla_queue:queue")),
        },
        status=400,
    )


@team_member_required
def voice(request):
    """Marketing's view: the period's categories (split by a segment), competitors and quotes."""
    now = timezone.now()
    tz = goals_timezone()
    form = VoiceFilterForm(
        request.GET,
        tz=tz,
        this_week=iso_week_of(now, tz=tz),
        this_month=now.astimezone(ZoneInfo(tz)).strftime("%Y-%m"),
    )
    can_answer = can(request.user, Action.CONTENT_MANAGE)
    if not form.is_valid():
        return render(request, "content/voice.html", {"form": form}, status=400)
    data = form.cleaned_data
    period = data["period_obj"]
    counted = period.until(now) if period.start < now else period
    filters = {
        "source_id": data["source"].pk if data.get("source") else None,
        "campaign_id": data["campaign"].pk if data.get("campaign") else None,
        "category": data.get("category") or None,
    }
    segment = data.get("segment") or None
    categories = objection_categories(period=counted, segment=segment, **filters)
    quotes = recent_objections(period=counted, limit=QUOTES, **filters)
    return render(
        request,
        "content/voice.html",
        {
            "form": form,
            "period": period,
            "period_label": data["period"],
            "timezone": tz,
            "segment_label": SEGMENTS.get(segment or ""),
            "categories": categories,
            "total": sum(r.count for r in categories),
            "competitors": objection_competitors(period=counted, **filters),
            "quotes": quotes,
            "can_answer": can_answer,
            "answer_assets": list(
                Asset.objects.filter(sales_ready=True).order_by("title", "id").only("id", "title")
            )
            if can_answer and quotes
            else [],
            "here": request.get_full_path(),
        },
    )


@team_member_required
@require_POST
def voice_answer(request, pk: int):
    """Link (or unlink, empty `answer`) the asset that answers an objection: marketing."""
    objection = get_object_or_404(Objection, pk=pk)
    if not can(request.user, Action.CONTENT_MANAGE):
        raise PermissionDenied("Only marketing (and admins) link the content that answers it.")
    form = AnswerForm(request.POST)
    back = safe_next(request, request.POST.get("next")) or reverse("content:voice")
    if not form.is_valid():
        messages.error(request, " ".join(form.errors.get("answer", ["Pick an asset."])))
        return redirect(back)
    asset = form.cleaned_data["answer"]
    try:
        objection_answer(objection=objection, asset_or_none=asset, by=request.user)
    except DomainError as exc:
        messages.error(request, f"Not linked: {exc.message}")
    else:
        if asset is None:
            messages.success(request, "The answer is unlinked.")
        else:
            messages.success(
                request,
                f"“{asset.title}” answers it: reps see it suggested on leads where a "
                f"{objection.get_category_display().lower()} objection like it is logged.",
            )
    return redirect(back)
