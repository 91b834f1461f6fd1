"""Lead flags on the pages, so that the leads and alignment views need nothing from content/:

- `{% lead_flags lead user as flags %}` (the lead page's right column): the lead's flags, open
  first, each with its thread and the forms the viewer may use, and the "Flag for marketing" form;
- `{% marketing_open_flags as open %}` (marketing's home): the open flags, oldest first;
- `{% rep_open_flags user as mine %}` (the rep's home): his open flags and whether marketing has
  replied in their threads."""

from dataclasses import dataclass, field
from datetime import datetime

from django import template
from django.db.models import Prefetch
from django.utils import timezone

from alignment.models import User
from content.flags.forms import FlagCommentForm, FlagRaiseForm, FlagResolveForm
from content.flags.services import may_comment, may_raise, may_reopen, may_resolve
from content.models import FlagMessage, FlagStatus, LeadFlag
from kpis.selectors.flags import OpenFlag, open_flags, open_flags_qs
from leads.models import Lead

register = template.Library()

HOME_SHOWN = 8
# the lead page shows the latest resolved flags under the open ones
RESOLVED_SHOWN = 5


@dataclass(frozen=True, slots=True)
class ThreadLine:
    author: User | None
    body: str
    at: datetime
    first: bool = False

    @property
    def from_marketing(self) -> bool:
        return bool(self.author and self.author.is_marketing)


def thread_of(flag: LeadFlag) -> list[ThreadLine]:
    """The flag's comment, then its messages, oldest first (prefetch `messages__author`)."""
    return [
        ThreadLine(author=flag.raised_by, body=flag.comment, at=flag.raised_at, first=True),
        *(ThreadLine(author=m.author, body=m.body, at=m.created_at) for m in flag.messages.all()),
    ]


@dataclass(slots=True)
class FlagItem:
    flag: LeadFlag
    thread: list[ThreadLine]
    comment_form: FlagCommentForm | None = None
    resolve_form: FlagResolveForm | None = None
    reopen_form: FlagCommentForm | None = None

    @property
    def is_open(self) -> bool:
        return self.flag.status == FlagStatus.OPEN


@dataclass(slots=True)
class FlagsCard:
    lead: Lead
    can_raise: bool
    raise_form: FlagRaiseForm | None
    items: list[FlagItem] = field(default_factory=list)
    more_resolved: int = 0

    @property
    def open_count(self) -> int:
        return sum(1 for i in self.items if i.is_open)


def flags_with_thread():
    return LeadFlag.objects.select_related("raised_by", "resolved_by").prefetch_related(
        Prefetch("messages", queryset=FlagMessage.objects.select_related("author"))
    )


def flag_item(
    flag: LeadFlag, *, lead: Lead, user: User | None, bound: dict | None = None
) -> FlagItem:
    """One flag with the forms `user` may use; `bound` replaces them by bound (erroneous) ones."""
    bound = bound or {}
    item = FlagItem(flag=flag, thread=thread_of(flag))
    if item.is_open:
        if may_comment(flag=flag, lead=lead, user=user):
            item.comment_form = bound.get("comment") or FlagCommentForm(flag_id=flag.pk)
        if may_resolve(user):
            item.resolve_form = bound.get("resolve") or FlagResolveForm(flag_id=flag.pk)
    elif may_reopen(flag=flag, user=user):
        item.reopen_form = bound.get("reopen") or FlagCommentForm(
            flag_id=flag.pk, label="Not settled? Say why and reopen it"
        )
    return item


def flags_card(
    *, lead: Lead, user: User | None, raise_form: FlagRaiseForm | None = None
) -> FlagsCard:
    can_raise = may_raise(lead=lead, user=user)
    card = FlagsCard(
        lead=lead,
        can_raise=can_raise,
        raise_form=(raise_form or FlagRaiseForm()) if can_raise else None,
    )
    flags = list(flags_with_thread().filter(lead=lead).order_by("-raised_at", "-id"))
    open_ = [f for f in flags if f.status == FlagStatus.OPEN]
    resolved = [f for f in flags if f.status != FlagStatus.OPEN]
    card.items = [
        flag_item(f, lead=lead, user=user)
        for f in [*sorted(open_, key=lambda f: (f.raised_at, f.pk)), *resolved[:RESOLVED_SHOWN]]
    ]
    card.more_resolved = max(0, len(resolved) - RESOLVED_SHOWN)
    return card


@register.simple_tag
def lead_flags(lead: Lead | None, user: User | None) -> FlagsCard | None:
    if lead is None or lead.pk is None:
        return None
    return flags_card(lead=lead, user=user)


@dataclass(frozen=True, slots=True)
class HomeFlags:
    flags: list[OpenFlag]
    total: int


@register.simple_tag
def marketing_open_flags() -> HomeFlags:
    now = timezone.now()
    return HomeFlags(
        flags=open_flags(at=now, limit=HOME_SHOWN), total=open_flags_qs(at=now).count()
    )


@dataclass(frozen=True, slots=True)
class RepFlag:
    flag: LeadFlag
    last: ThreadLine
    marketing_replied: bool


@register.simple_tag
def rep_open_flags(user: User | None) -> list[RepFlag]:
    if user is None or user.pk is None:
        return []
    flags = (
        flags_with_thread()
        .select_related("lead")
        .filter(raised_by=user, status=FlagStatus.OPEN)
        .order_by("raised_at", "id")
    )
    mine = []
    for flag in flags:
        thread = thread_of(flag)
        mine.append(
            RepFlag(
                flag=flag,
                last=thread[-1],
                marketing_replied=any(line.from_marketing for line in thread[1:]),
            )
        )
    return mine
