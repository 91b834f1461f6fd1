from django.shortcuts import render

from alignment.decorators import team_member_required
from leads import selectors
from leads.models import Stage

PAGE_SIZE = 50


def _page_number(request) -> int:
    try:
        return max(1, int(request.GET.get("page", 1)))
    except ValueError:
        return 1


@team_member_required
def lead_list(request):
    stage = request.GET.get("stage", "")
    if stage not in Stage.values:
        stage = ""
    q = request.GET.get("q", "")
    number = _page_number(request)
    start = (number - 1) * PAGE_SIZE
    # one row more than a page tells whether there is a next page, without a COUNT(*) over millions
    rows = list(selectors.leads_list(stage=stage, q=q)[start : start + PAGE_SIZE + 1])
    return render(
        request,
        "leads/list.html",
        {
            "leads": rows[:PAGE_SIZE],
            "page_number": number,
            "has_next": len(rows) > PAGE_SIZE,
            "stages": Stage.choices,
            "stage": stage,
            "q": q,
        },
    )
