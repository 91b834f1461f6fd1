"""Demo data for the content library and the feedback loops, written through their services (so
every row has its event, as in real use) on top of `seed_demo`'s company: marketing's library,
shares of what the lead page suggests, objections (some answered with an asset), lead flags (one
discussed and resolved), win and loss stories and content requests with votes. Deterministic
for a seed; does nothing when the library has assets already."""

import random
from dataclasses import dataclass

from django.db import transaction

from alignment.lib.errors import DomainError, PermissionDenied
from alignment.models import Role, User
from content.flags.services import flag_comment, flag_raise, flag_resolve
from content.models import Asset, Objection
from content.requests.services import (
    content_request_create,
    content_request_update,
    content_request_vote,
)
from content.services import asset_create
from content.sharing import asset_share
from content.stories.services import latest_close, story_reasons, story_record
from content.suggestions import suggested_assets
from content.voice.services import objection_answer, objection_log
from leads.models import Lead, Stage

# (title, kind, funnel stage, personas, industries, sales ready)
ASSETS = (
    ("How a Software scale-up halved lead response time", "case_study", "decision",
     ["head of sales", "vp sales"], ["software"], True),
    ("Financial Services: one pipeline, audited", "case_study", "decision",
     ["cfo", "coo"], ["financial services"], True),
    ("Manufacturing buyer's guide to revenue operations", "one_pager", "consideration",
     ["coo", "vp operations", "operations manager"], ["manufacturing", "logistics"], True),
    ("Product tour for sales leaders", "video", "consideration",
     ["vp sales", "head of sales", "director of sales", "sales manager"], [], True),
    ("Security and data protection overview", "one_pager", "decision",
     ["cto", "it director", "it manager"], [], True),
    ("ROI calculator", "template", "decision", ["cfo", "ceo", "chief revenue officer"], [], True),
    ("Webinar: the marketing-sales SLA in practice", "webinar_recording", "awareness",
     ["marketing director", "head of marketing", "vp marketing"], [], True),
    ("Healthcare: speed to lead with compliance", "case_study", "decision",
     ["head of sales"], ["healthcare"], True),
    ("Why lead scoring fails (blog)", "blog_post", "awareness",
     ["marketing manager", "marketing operations manager"], [], False),
    ("Integration deck: CRM, marketing automation, data warehouse", "deck", "consideration",
     ["cto", "head of revenue operations", "sales operations manager"], ["software"], True),
)  # fmt: skip

# (category, competitor, what the prospect said)
OBJECTIONS = (
    ("price", "", "We pay half of that for our current tool."),
    ("competitor", "Acme CRM", "Acme bundles lead scoring with their CRM for free."),
    ("integration", "", "Does it sync both ways with our CRM, or only push?"),
    ("security", "", "Where is the data hosted, and who can see it?"),
    ("timing", "", "Budget opens next quarter; come back in April."),
    ("feature", "", "Can marketing and sales see different scoring models?"),
    ("competitor", "Globex", "Globex offered a three-month free pilot."),
    ("price", "", "Per seat pricing does not work for our SDR team."),
    ("integration", "", "We need SSO with Azure AD before IT signs off."),
    ("other", "", "The board wants a reference customer in our region."),
)

# (reason, what the rep says)
FLAGS = (
    ("wrong_routing", "A Munich company, routed to the US team."),
    ("wrong_data", "The phone number is the switchboard and the title is two jobs ago."),
    ("duplicate", "Same person as the lead from the webinar last week."),
    ("unclear_source", "Says Google Ads, but they told me a partner referred them."),
)

REQUESTS = (
    ("A one-pager on our ISO 27001 certification", "decision", "it director"),
    ("Case study from a logistics customer", "decision", "coo"),
    ("Comparison sheet: us versus Acme CRM", "consideration", "vp sales"),
)

WIN_SENTENCES = (
    "The case study from a company like theirs answered every question the CFO had.",
    "We were the only ones who called back within the hour.",
    "The integration with their CRM was the deciding demo.",
)


@dataclass(frozen=True, slots=True)
class ContentDemoSummary:
    assets: int
    shares: int
    objections: int
    flags: int
    stories: int
    requests: int


def _people() -> tuple[User, User, list[User]]:
    by_role = {}
    for user in User.objects.filter(is_active=True).order_by("pk"):
        by_role.setdefault(user.effective_role, []).append(user)
    marketers = by_role.get(Role.MARKETER, []) + by_role.get(Role.MARKETING_MANAGER, [])
    if not marketers or not by_role.get(Role.SALES_REP):
        raise DomainError("Run `manage.py seed_demo` first: the demo needs its people.")
    mmanager = (by_role.get(Role.MARKETING_MANAGER) or marketers)[0]
    return marketers[0], mmanager, by_role[Role.SALES_REP]


def _try(call, *args, **kwargs):
    """A demo row the rules refuse (a rep who no longer owns the lead, a closed flag) is skipped."""
    try:
        return call(*args, **kwargs)
    except (DomainError, PermissionDenied):
        return None


@transaction.atomic
def content_demo_seed(*, seed: int = 42) -> ContentDemoSummary | None:
    if Asset.objects.exists():
        return None
    rng = random.Random(seed)
    marketer, mmanager, reps = _people()
    assets = [
        asset_create(
            by=marketer,
            data={
                "title": title,
                "kind": kind,
                "funnel_stage": stage,
                "personas": personas,
                "industries": industries,
                "url": f"https://content.pipeline-demo.example/{n + 1}",
                "sales_ready": ready,
            },
        )
        for n, (title, kind, stage, personas, industries, ready) in enumerate(ASSETS)
    ]
    owners = {rep.pk: rep for rep in reps}
    working = list(
        Lead.objects.filter(
            owner_id__in=owners, stage__in=[Stage.MQL, Stage.SAL, Stage.SQL, Stage.OPPORTUNITY]
        ).order_by("-pk")[:80]
    )
    shares = 0
    for lead in working[:40]:
        suggestion = next(iter(suggested_assets(lead=lead, limit=1)), None)
        if suggestion and _try(
            asset_share, asset=suggestion.asset, lead=lead, by=owners[lead.owner_id]
        ):
            shares += 1
    objections = []
    for n, lead in enumerate(working[:30]):
        category, competitor, text = OBJECTIONS[n % len(OBJECTIONS)]
        objection = _try(
            objection_log,
            lead=lead,
            by=owners[lead.owner_id],
            category=category,
            competitor=competitor,
            text=text,
            kind="question" if text.endswith("?") else "objection",
        )
        objections += [objection] if objection else []
    answers = {"security": assets[4], "integration": assets[9], "price": assets[5]}
    for objection in objections:
        if objection.category in answers and rng.random() < 0.7:
            objection_answer(
                objection=objection, asset_or_none=answers[objection.category], by=marketer
            )
    flags = []
    for (reason, comment), lead in zip(FLAGS, working[::-1], strict=False):
        flag = _try(flag_raise, lead=lead, by=owners[lead.owner_id], reason=reason, comment=comment)
        flags += [flag] if flag else []
    if flags:
        _try(flag_comment, flag=flags[0], by=mmanager, body="Thanks: the country was mapped wrong.")
        _try(
            flag_resolve,
            flag=flags[0],
            by=mmanager,
            outcome="rerouted",
            resolution="Moved to DACH.",
        )
    stories = 0
    won_reasons = [r.code for r in story_reasons("won")]
    closed = Lead.objects.filter(owner_id__in=owners, stage__in=[Stage.WON, Stage.LOST]).order_by(
        "-pk"
    )[:40]
    for lead in closed:
        close = latest_close(lead)
        if close is None or rng.random() < 0.3:  # some stories are still to be told
            continue
        if close.to_stage == Stage.WON:
            told = _try(
                story_record,
                stage_change=close,
                by=owners[lead.owner_id],
                reasons=rng.sample([c for c in won_reasons if c != "other"], 2),
                sentence=rng.choice(WIN_SENTENCES),
                assets=[rng.choice(assets[:8])],
            )
        else:
            code = close.reason.code if close.reason_id else "other"
            told = _try(
                story_record,
                stage_change=close,
                by=owners[lead.owner_id],
                reasons=[code],
                sentence="They went with the cheaper tool they already had.",
                competitor="Acme CRM" if code == "competitor" else "",
            )
        stories += bool(told)
    requests = []
    for n, (title, stage, persona) in enumerate(REQUESTS):
        request = content_request_create(
            by=reps[n % len(reps)], title=title, funnel_stage=stage, persona=persona
        )
        for voter in rng.sample(reps, min(len(reps), 3 - n)):
            _try(content_request_vote, request=request, by=voter)
        requests.append(request)
    content_request_update(
        request=requests[0], by=mmanager, status="planned", note="Writing it this month."
    )
    return ContentDemoSummary(
        assets=len(assets),
        shares=shares,
        objections=Objection.objects.count(),
        flags=len(flags),
        stories=stories,
        requests=len(requests),
    )
