"""The lead list (search, filters, sorting, an estimated total, saved views), its CSV export,
the bulk actions on ticked leads, and the create and edit pages of one lead."""

from collections.abc import Callable

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import QueryDict, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from alignment.decorators import team_member_required
from alignment.lib.errors import DomainError
from alignment.permissions import Action, can
from alignment.views import _page_number
from leads import routing
from leads.api.export import export_chunks
from leads.intake import lead_intake, lead_update
from leads.lifecycle import lead_move
from leads.list_forms import (
    BulkAssignForm,
    BulkRecycleForm,
    LeadCreateForm,
    LeadEditForm,
    LeadListForm,
    recycle_reasons,
    sales_people,
)
from leads.models import Lead, Stage
from leads.selectors import LeadCount, leads_count_estimate, leads_list

PAGE_SIZE = 50
# the filters in the folding panel (the search and the sort stay outside it)
FILTER_FIELDS = [name for name in LeadListForm.base_fields if name not in ("q", "sort")]

OPEN_STAGES = [s for s in Stage.values if s not in (Stage.WON, Stage.LOST, Stage.REJECTED)]
SALES_OPEN_STAGES = [Stage.MQL, Stage.SAL, Stage.SQL, Stage.OPPORTUNITY]
# (label, query string): predefined views, plain links to filters anyone can also set by hand
SAVED_VIEWS = (
    ("My open MQLs", "owner=me&" + "&".join(f"stage={s}" for s in SALES_OPEN_STAGES)),
    ("Unassigned MQLs", f"owner=none&stage={Stage.MQL}"),
    ("All open", "&".join(f"stage={s}" for s in OPEN_STAGES)),
)
# (label, sort key, the first click's direction): the table's sortable columns
SORTABLE = {
    "name": ("Lead", ""),
    "company": ("Company", ""),
    "score": ("Score", "-"),
    "created": ("Created", "-"),
    "updated": ("Updated", "-"),
}


def _query(params: QueryDict, **changes) -> str:
    """`params` as a query string, with `changes` set (None drops a parameter)."""
    query = params.copy()
    for name in ("page", "mine"):
        query.pop(name, None)
    for name, value in changes.items():
        query.pop(name, None)
        if value is not None:
            query[name] = value
    return query.urlencode()


def _sort_links(params: QueryDict, order: str) -> dict[str, dict]:
    links = {}
    for key, (label, first) in SORTABLE.items():
        current = order.lstrip("-") == key
        descending = order.startswith("-")
        direction = ("" if descending else "-") if current else first
        links[key] = {
            "label": label,
            "query": _query(params, sort=direction + key),
            "aria": ("descending" if descending else "ascending") if current else "",
        }
    return links


def _total(qs, *, start: int, rows: list, has_next: bool) -> LeadCount:
    # a last page tells the total without another query
    if not has_next and (rows or start == 0):
        return LeadCount(start + len(rows), exact=True)
    return leads_count_estimate(qs)


def total_text(total: LeadCount) -> str:
    """ "12 leads", or for an estimate "about 12,300 leads" (three significant figures)."""
    if total.exact:
        return f"{total.value:,} lead{pluralize(total.value)}"
    digits = len(str(total.value))
    rounded = round(total.value, -max(0, digits - 3))
    return f"about {rounded:,} leads"


def _list_page(request, params: QueryDict, *, status: int = 200, **bulk_forms):
    user = request.user
    # the sales people, read once: the owner filter and the bulk assignment both list them
    people = list(sales_people())
    form = LeadListForm(params, user=user, people=people)
    number = _page_number(request) if params is request.GET else 1
    start = (number - 1) * PAGE_SIZE
    rows: list[Lead] = []
    has_next = False
    total = None
    order = "-created"
    if form.is_valid():
        order = form.order
        qs = leads_list(q=form.cleaned_data["q"], filters=form.filters(), order=order)
        # one row more than a page tells whether there is a next page
        rows = list(qs[start : start + PAGE_SIZE + 1])
        has_next = len(rows) > PAGE_SIZE
        rows = rows[:PAGE_SIZE]
        total = _total(qs, start=start, rows=rows, has_next=has_next)
    else:
        status = 400
    can_assign = can(user, Action.LEAD_ASSIGN)
    can_recycle = can(user, Action.LEAD_RECYCLE)
    context = {
        "form": form,
        "leads": rows,
        "total_text": total_text(total) if total else "",
        "page_number": number,
        "has_next": has_next,
        "query": _query(params),
        # how many filters besides the search are set: their panel opens when any is
        "filtered": sum(
            1 for name in FILTER_FIELDS if any(v.strip() for v in params.getlist(name))
        ),
        "sort": _sort_links(params, order),
        "saved_views": [(label, query, query == _query(params)) for label, query in SAVED_VIEWS],
        "people": people,
        "reasons": list(recycle_reasons()) if can_recycle else [],
        "can_assign": can_assign,
        "can_recycle": can_recycle,
        "assign_form": bulk_forms.get("assign_form") or (BulkAssignForm() if can_assign else None),
        "recycle_form": bulk_forms.get("recycle_form")
        or (BulkRecycleForm() if can_recycle else None),
    }
    return render(request, "leads/list.html", context, status=status)


@team_member_required
def lead_list(request):
    return _list_page(request, request.GET)


@team_member_required
def lead_export(request):
    """The filtered list, in its order, as CSV (the API export's columns), streamed."""
    form = LeadListForm(request.GET, user=request.user, people=list(sales_people()))
    if not form.is_valid():
        return _list_page(request, request.GET)
    qs = leads_list(q=form.cleaned_data["q"], filters=form.filters(), order=form.order)
    response = StreamingHttpResponse(
        export_chunks(qs.select_related(None)), content_type="text/csv; charset=utf-8"
    )
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="leads-{stamp}.csv"'
    return response


def _bulk(request, form, *, act, form_name: str, done: Callable[[dict], tuple[str, str]]):
    """Act on each ticked lead in its own transaction (one refusal stops no other), then report
    what was done and what was refused, in the service's words, on the list as it was."""
    params = QueryDict(request.POST.get("next", ""))
    if not form.is_valid():
        return _list_page(request, params, status=400, **{form_name: form})
    changed, refused = [], []
    for lead in form.cleaned_data["lead"]:
        try:
            act(lead, form.cleaned_data)
        except DomainError as exc:
            name = lead.display_name
            refused.append(exc.message if name in exc.message else f"{name}: {exc.message}")
        else:
            changed.append(lead.display_name)
    if changed:
        verb, where = done(form.cleaned_data)
        leads = f"{len(changed)} lead{pluralize(len(changed))}"
        messages.success(request, f"{verb} {leads} {where}: {', '.join(changed)}.")
    for sentence in refused:
        messages.error(request, f"Not changed: {sentence}")
    query = _query(params)
    return redirect(reverse("leads:list") + (f"?{query}" if query else ""))


@team_member_required
@require_POST
def lead_bulk_assign(request):
    if not can(request.user, Action.LEAD_ASSIGN):
        raise PermissionDenied("Only sales managers and admins assign leads.")
    form = BulkAssignForm(request.POST)

    def act(lead: Lead, data: dict) -> None:
        routing.lead_assign(lead=lead, rep=data["rep"], by=request.user, note=data["note"])

    return _bulk(
        request,
        form,
        act=act,
        form_name="assign_form",
        done=lambda d: ("Assigned", f"to {d['rep']}"),
    )


@team_member_required
@require_POST
def lead_bulk_recycle(request):
    if not can(request.user, Action.LEAD_RECYCLE):
        raise PermissionDenied("Your role may not recycle leads; ask a sales or marketing manager.")
    form = BulkRecycleForm(request.POST)

    def act(lead: Lead, data: dict) -> None:
        lead_move(
            lead=lead, to=Stage.RECYCLED, by=request.user, reason=data["reason"], note=data["note"]
        )

    return _bulk(
        request,
        form,
        act=act,
        form_name="recycle_form",
        done=lambda d: ("Recycled", "to marketing"),
    )


def _form_page(request, form, *, lead: Lead | None, status: int = 200):
    return render(request, "leads/form.html", {"form": form, "lead": lead}, status=status)


def _service_error(form, exc: DomainError) -> None:
    form.add_error(exc.field if exc.field in form.fields else None, exc.message)


@team_member_required
def lead_create(request):
    form = LeadCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = {"email": form.cleaned_data["email"], **form.changes()}
        try:
            result = lead_intake(data=data, by=request.user)
        except DomainError as exc:
            _service_error(form, exc)
        else:
            if result.created:
                messages.success(request, f"{result.lead.display_name} was created.")
            else:  # someone created the same email meanwhile: intake updated that lead
                messages.success(request, f"{result.lead.display_name} already existed: updated.")
            return redirect("leads:detail", pk=result.lead.pk)
    return _form_page(request, form, lead=None, status=400 if form.errors else 200)


@team_member_required
def lead_edit(request, pk: int):
    lead = get_object_or_404(Lead.objects.select_related("source", "campaign"), pk=pk)
    if request.method != "POST":
        return _form_page(request, LeadEditForm(initial=LeadEditForm.initial_for(lead)), lead=lead)
    form = LeadEditForm(request.POST)
    if form.is_valid():
        try:
            lead_update(lead=lead, changes=form.changes(), by=request.user)
        except DomainError as exc:
            _service_error(form, exc)
        else:
            messages.success(request, f"{lead.display_name} was saved.")
            return redirect("leads:detail", pk=lead.pk)
    return _form_page(request, form, lead=lead, status=400)
