from django.db.models import QuerySet

from leads.models import Lead


def leads_list(*, stage: str = "", owner_id: int | None = None, q: str = "") -> QuerySet[Lead]:
    qs = Lead.objects.select_related("owner", "source", "campaign")
    if stage:
        qs = qs.filter(stage=stage)
    if owner_id:
        qs = qs.filter(owner_id=owner_id)
    if q:
        q = q.strip()
        if "@" in q:
            qs = qs.filter(email=q.lower())
        else:
            qs = qs.filter(company__istartswith=q) | qs.filter(last_name__istartswith=q)
    return qs.order_by("-created_at", "-id")
