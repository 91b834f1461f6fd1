"""A reproducible demo company: users of every role, sources, campaigns, routing rules, and leads
with touchpoints, stage history and assignments.

Outcomes follow a hidden logistic model of fit (title seniority, company size, industry, country,
competitor use) and engagement (how many touchpoints, and of which kinds), so that a scoring model
trained on this data has something real to learn. Nothing here calls the lifecycle services: rows
are generated column by column with numpy and written with COPY on PostgreSQL (a million leads with
ten million touchpoints in a few minutes) and with bulk_create elsewhere. Signals are therefore not
sent: SLA clocks and scores of seeded leads are whatever their own backfill computes.

Every seeded row has its event in the lead event log, written by the same COPY in the same
transaction (lead.created, lead.stage_changed plus the specific type of the move, lead.assigned,
touchpoint.recorded; payloads as leads.events describes them). No outbox entry: the demo's past is
history, and nothing reacts to it (no announcement of a win from last year).

The data agrees with the active scoring model: no lead ends in new, nurturing or recycled while its
score meets the MQL definition (the real-time scoring would have made it an MQL). The plan computes
each lead's fit with the model, and a touchpoint chunk leaves out the heaviest engagement of any
such lead until it is below the line.

Reproducible: the same seed (and the same active scoring model) gives the same people, companies,
stages and touchpoints; timestamps are fixed offsets from the moment of the run.
"""

import io
import json
import logging
import re
import sys
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
from django.contrib.auth.hashers import make_password
from django.db import connection, models, transaction
from django.db.models import F, Value
from django.utils import timezone
from tqdm import tqdm

from alignment.lib.errors import DomainError
from alignment.models import Role, User
from leads.models import (
    OPEN_SALES_STAGES,
    SALES_TOUCHPOINT_KINDS,
    Assignment,
    AssignmentRule,
    Campaign,
    Channel,
    EventType,
    Lead,
    LeadEvent,
    PoolMember,
    Reason,
    ReasonKind,
    Source,
    Stage,
    StageChange,
    Touchpoint,
    TouchpointKind,
    normalise_key,
)
from leads.scoring.models import RunKind
from leads.scoring.rules import ATTRIBUTE_PREFIX, UNCAPPED, CompiledModel
from leads.scoring.services import (
    PRE_MQL_STAGES,
    scoring_model_active,
    scoring_run_create,
    scoring_run_execute,
)
from leads.services import STAGE_TIMESTAMP

logger = logging.getLogger(__name__)

DEMO_PASSWORD = "demo"
SEED_SYSTEM = "seed"

DAY = 86_400
HOUR = 3_600
# int64 stand-in for NULL in timestamp columns (seconds relative to "now")
_NULL = np.iinfo(np.int64).min
# Leads per touchpoint chunk: every chunk has its own random stream, so this number is part of
# what makes a seed reproducible. Do not change it casually.
_TOUCH_CHUNK_LEADS = 20_000
_LEAD_CHUNK = 100_000
_HISTORY_CHUNK = 250_000


# --- the company ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Person:
    username: str
    first_name: str
    last_name: str
    role: str
    capacity: int = 50
    working_timezone: str = "UTC"
    available: bool = True
    admin: bool = False


PEOPLE = (
    _Person("admin", "Sam", "Okafor", Role.ADMIN, admin=True),
    _Person("marketer", "Mia", "Schneider", Role.MARKETER),
    _Person("mmanager", "Laura", "Becker", Role.MARKETING_MANAGER),
    _Person("smanager", "Jonas", "Weber", Role.SALES_MANAGER, working_timezone="Europe/Berlin"),
    _Person("rep1", "Lena", "Fischer", Role.SALES_REP, 80, "Europe/Berlin"),
    _Person("rep2", "Tom", "Walsh", Role.SALES_REP, 120, "America/New_York"),
    _Person("rep3", "Priya", "Patel", Role.SALES_REP, 60, "Europe/London"),
    _Person("rep4", "Max", "Hoffmann", Role.SALES_REP, 100, "Europe/Berlin"),
    # on holiday: keeps their queue, gets no new leads from routing
    _Person("rep5", "Emma", "Clarke", Role.SALES_REP, 40, "Europe/London", available=False),
    _Person("rep6", "Carlos", "Rivera", Role.SALES_REP, 90, "America/New_York"),
)
DEMO_USERNAMES = tuple(p.username for p in PEOPLE)
REP_USERNAMES = tuple(p.username for p in PEOPLE if p.role == Role.SALES_REP)

# (name, share of organic leads); campaign sources are named in _CAMPAIGNS
_ORGANIC_SOURCES = (("Website", 45), ("Google Organic", 40), ("Word of mouth", 15))


@dataclass(frozen=True)
class _CampaignSpec:
    name: str
    channel: str
    source: str
    utm_source: str
    utm_medium: str
    utm_campaign: str
    starts_days_ago: int
    days: int | None  # None: always on
    budget: tuple[int, int]  # range in thousands
    marketing_owner: str
    sales_owner: str
    weight: float  # share of the leads created while it runs
    # hidden: how much more (or less) likely its leads become MQLs
    effect: float


_CAMPAIGNS = (
    _CampaignSpec("Monthly newsletter", Channel.EMAIL, "Newsletter", "newsletter", "email", "monthly-newsletter", 420, None, (2, 5), "marketer", "smanager", 2.0, 0.0),
    _CampaignSpec("Nurture: RevOps playbook", Channel.EMAIL, "Newsletter", "hubspot", "email", "revops-playbook-nurture", 300, 180, (4, 9), "marketer", "smanager", 1.5, 0.1),
    _CampaignSpec("Google Ads: brand", Channel.PAID_SEARCH, "Google Ads", "google", "cpc", "brand", 420, None, (20, 40), "mmanager", "smanager", 3.0, 0.2),
    _CampaignSpec("Google Ads: lead routing", Channel.PAID_SEARCH, "Google Ads", "google", "cpc", "lead-routing", 240, 150, (25, 60), "marketer", "rep2", 3.0, 0.1),
    _CampaignSpec("LinkedIn: SLA calculator", Channel.PAID_SOCIAL, "LinkedIn", "linkedin", "paid_social", "sla-calculator", 200, 90, (15, 35), "marketer", "rep1", 3.0, -0.3),
    _CampaignSpec("LinkedIn: founder posts", Channel.ORGANIC_SOCIAL, "LinkedIn", "linkedin", "social", "founder-posts", 360, None, (1, 3), "mmanager", "smanager", 1.0, -0.1),
    _CampaignSpec("SEO: alignment guide", Channel.SEO, "Google Organic", "google", "organic", "alignment-guide", 420, None, (5, 12), "marketer", "smanager", 2.5, 0.0),
    _CampaignSpec("Ebook: The shared funnel", Channel.CONTENT, "Content syndication", "syndication", "content", "shared-funnel-ebook", 330, 120, (8, 20), "marketer", "rep3", 2.5, -0.2),
    _CampaignSpec("Webinar: MQL definitions that stick", Channel.WEBINAR, "Webinar", "webinar", "webinar", "mql-definitions", 280, 30, (3, 8), "mmanager", "rep4", 4.0, 0.35),
    _CampaignSpec("Webinar: Speed-to-lead in practice", Channel.WEBINAR, "Webinar", "webinar", "webinar", "speed-to-lead", 120, 30, (3, 8), "marketer", "rep6", 4.0, 0.35),
    _CampaignSpec("RevOps Summit Berlin", Channel.EVENT, "Trade show", "revops-summit", "event", "revops-summit-berlin", 250, 10, (40, 80), "mmanager", "rep1", 6.0, 0.4),
    _CampaignSpec("Sales Leaders Forum London", Channel.EVENT, "Trade show", "sales-leaders-forum", "event", "slf-london", 90, 7, (30, 60), "mmanager", "rep3", 6.0, 0.4),
    _CampaignSpec("Customer referral program", Channel.REFERRAL, "Referral", "referral", "referral", "customer-referral", 420, None, (5, 10), "mmanager", "smanager", 1.0, 0.8),
    _CampaignSpec("Partner program: consultancies", Channel.PARTNER, "Partner", "partner", "partner", "consultancy-partners", 380, None, (10, 20), "mmanager", "rep2", 1.0, 0.5),
    _CampaignSpec("Outbound: DACH manufacturing", Channel.OUTBOUND, "Outbound", "outbound", "telemarketing", "dach-manufacturing", 180, 120, (20, 40), "marketer", "rep4", 2.0, -0.4),
    _CampaignSpec("Direct mail: executive box", Channel.DIRECT_MAIL, "Direct mail", "direct-mail", "print", "executive-box", 150, 60, (15, 30), "marketer", "rep6", 1.5, -0.2),
    _CampaignSpec("Podcast sponsorship", Channel.OTHER, "Podcast", "podcast", "audio", "revenue-podcast", 210, 120, (6, 15), "mmanager", "smanager", 1.0, 0.0),
)  # fmt: skip
# leads keep arriving after a webinar or an event ends (imported lists, follow-ups)
_LEAD_TAIL_DAYS = {Channel.WEBINAR: 14, Channel.EVENT: 21}
_PAID_SEARCH_TERMS = (
    "lead routing software",
    "mql sla",
    "sales marketing alignment",
    "lead scoring tool",
    "speed to lead",
)
_AD_VARIANTS = ("variant-a", "variant-b")


@dataclass(frozen=True)
class _RuleSpec:
    name: str
    position: int
    conditions: list
    members: dict[str, int]  # rep username -> weight


_RULES = (
    _RuleSpec(
        "DACH",
        10,
        [{"field": "country", "op": "in", "value": ["DE", "AT", "CH"]}],
        {"rep1": 2, "rep4": 2, "rep5": 1},
    ),
    _RuleSpec(
        "Enterprise",
        20,
        [{"field": "company_size", "op": "gte", "value": 1000}],
        {"rep2": 2, "rep3": 1, "rep6": 2},
    ),
    _RuleSpec(
        "Everyone else",
        30,
        [],
        {"rep1": 1, "rep2": 1, "rep3": 2, "rep4": 1, "rep5": 1, "rep6": 1},
    ),
)
_DACH = ("DE", "AT", "CH")
_ENTERPRISE_SIZE = 1000

# --- vocabularies with their hidden weights ----------------------------------------------------

_FIRST_NAMES = (
    "Anna", "Ben", "Clara", "David", "Elena", "Felix", "Greta", "Hannah", "Isabel", "Jakob",
    "Julia", "Karl", "Laura", "Lukas", "Maria", "Martin", "Nina", "Oliver", "Paula", "Paul",
    "Sarah", "Simon", "Sophie", "Stefan", "Thomas", "Ursula", "Victor", "Walter", "Yvonne", "Zoe",
    "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "William",
    "Elizabeth", "Richard", "Barbara", "Joseph", "Susan", "Charles", "Jessica", "Daniel", "Karen",
    "Matthew", "Nancy", "Anthony", "Lisa", "Mark", "Betty", "Steven", "Emily", "Andrew", "Olivia",
    "Joshua", "Amelia", "George", "Grace", "Harry", "Chloe", "Jack", "Lucy", "Noah", "Ella",
    "Lucas", "Camille", "Louis", "Manon", "Hugo", "Ines", "Sanne", "Daan", "Lotte", "Sem",
    "Pablo", "Lucia", "Javier", "Carmen", "Marco", "Giulia", "Luca", "Francesca", "Erik",
    "Astrid", "Lars", "Ingrid", "Piotr", "Katarzyna", "Tomasz", "Agnieszka", "Arjun", "Priya",
    "Rahul", "Ananya", "Rafael", "Beatriz", "Thiago", "Fernanda", "Liam", "Ava", "Ethan", "Mia",
)  # fmt: skip
_LAST_NAMES = (
    "Mueller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz",
    "Hoffmann", "Koch", "Richter", "Klein", "Wolf", "Neumann", "Schwarz", "Zimmermann", "Braun",
    "Huber", "Gruber", "Steiner", "Moser", "Keller", "Brunner", "Smith", "Johnson", "Williams",
    "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez", "Wilson", "Anderson",
    "Taylor", "Thomas", "Moore", "Jackson", "Martin", "Lee", "Thompson", "White", "Harris",
    "Clark", "Lewis", "Walker", "Hall", "Young", "Evans", "Roberts", "Wright", "Green", "Baker",
    "O'Brien", "Murphy", "Kelly", "Walsh", "Bernard", "Dubois", "Durand", "Lefebvre", "Moreau",
    "Laurent", "de Jong", "Jansen", "de Vries", "Bakker", "Visser", "Fernandez", "Lopez",
    "Sanchez", "Perez", "Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Johansson",
    "Andersson", "Karlsson", "Nilsson", "Nowak", "Kowalski", "Wisniewski", "Tremblay", "Gagnon",
    "Roy", "Singh", "Sharma", "Patel", "Gupta", "Kumar", "Silva", "Santos", "Oliveira", "Souza",
    "Nguyen", "Chen", "Wang", "Kim", "Park", "Ito", "Sato",
)  # fmt: skip
# (title, share, hidden fit weight): seniority buys, juniors browse
_TITLES = (
    ("CEO", 2.0, 1.2), ("Founder", 1.5, 1.0), ("CTO", 1.5, 1.0), ("CFO", 1.0, 0.9),
    ("COO", 1.0, 1.1), ("Chief Revenue Officer", 1.0, 1.4), ("Chief Marketing Officer", 1.0, 1.3),
    ("VP Sales", 2.5, 1.1), ("VP Marketing", 2.5, 1.0), ("VP Operations", 1.5, 0.9),
    ("VP Engineering", 1.5, 0.6), ("Head of Sales", 3.0, 0.9), ("Head of Marketing", 3.0, 0.8),
    ("Head of Revenue Operations", 2.0, 1.0), ("Director of Sales", 3.0, 0.8),
    ("Marketing Director", 3.0, 0.7), ("IT Director", 2.5, 0.4), ("Head of Procurement", 1.5, 0.3),
    ("Sales Manager", 5.0, 0.3), ("Marketing Manager", 5.0, 0.3),
    ("Marketing Operations Manager", 3.0, 0.5), ("Sales Operations Manager", 3.0, 0.5),
    ("IT Manager", 4.0, 0.0), ("Product Manager", 4.0, -0.1), ("Operations Manager", 4.0, 0.1),
    ("Account Executive", 5.0, -0.3), ("Sales Development Representative", 4.0, -0.2),
    ("Marketing Specialist", 5.0, -0.3), ("Data Analyst", 4.0, -0.4),
    ("Software Engineer", 5.0, -0.6), ("Consultant", 4.0, -0.5), ("Accountant", 3.0, -0.7),
    ("Office Manager", 3.0, -0.6), ("Assistant", 2.5, -1.0), ("Intern", 2.0, -1.4),
    ("Student", 2.5, -1.6),
)  # fmt: skip
# (industry, share, hidden fit weight)
_INDUSTRIES = (
    ("Software", 18, 0.6), ("Financial Services", 10, 0.4), ("Telecommunications", 5, 0.3),
    ("Manufacturing", 14, 0.3), ("Logistics", 7, 0.1), ("Healthcare", 9, 0.0), ("Retail", 9, -0.1),
    ("Professional Services", 8, 0.0), ("Media", 5, -0.2), ("Education", 6, -0.6),
    ("Government", 4, -0.5), ("Non-profit", 5, -0.8),
)  # fmt: skip
# (ISO code, share, hidden fit weight, legal forms, phone prefix)
_COUNTRIES = (
    ("DE", 18, 0.3, ("GmbH", "AG", "SE"), "+49"),
    ("AT", 4, 0.2, ("GmbH", "AG"), "+43"),
    ("CH", 4, 0.3, ("AG", "GmbH", "SA"), "+41"),
    ("US", 22, 0.3, ("Inc.", "LLC", "Corp."), "+1"),
    ("GB", 12, 0.2, ("Ltd", "plc"), "+44"),
    ("FR", 7, 0.0, ("SAS", "SA"), "+33"),
    ("NL", 5, 0.2, ("B.V.",), "+31"),
    ("ES", 4, -0.2, ("S.L.", "S.A."), "+34"),
    ("IT", 4, -0.2, ("S.p.A.", "S.r.l."), "+39"),
    ("SE", 3, 0.1, ("AB",), "+46"),
    ("PL", 3, -0.3, ("Sp. z o.o.",), "+48"),
    ("CA", 4, 0.1, ("Inc.", "Ltd."), "+1"),
    ("AU", 3, 0.0, ("Pty Ltd",), "+61"),
    ("IN", 4, -0.6, ("Pvt Ltd",), "+91"),
    ("BR", 3, -0.5, ("Ltda.",), "+55"),
)
_COMPANY_A = (
    "Nordwind", "Alpen", "Blue", "Bright", "Cedar", "Clear", "Copper", "Delta", "Echo", "Ember",
    "Falcon", "Fjord", "Golden", "Granite", "Harbor", "Helix", "Iron", "Juniper", "Keystone",
    "Lumen", "Maple", "Meridian", "Nimbus", "North", "Oak", "Orbit", "Pacific", "Pine", "Pioneer",
    "Quantum", "Rapid", "Red", "River", "Silver", "Solar", "Spark", "Stone", "Summit", "Swift",
    "Terra", "Tidal", "True", "Union", "Vertex", "Vista", "West", "Willow", "Zenith", "Aurora",
    "Beacon", "Cobalt", "Crystal", "Evergreen", "Frontier", "Horizon", "Lighthouse", "Nova",
    "Polar", "Prime", "Sterling",
)  # fmt: skip
_COMPANY_B = (
    "Analytics", "Logistics", "Systems", "Software", "Labs", "Dynamics", "Foods", "Health",
    "Energy", "Finance", "Capital", "Media", "Robotics", "Motors", "Textiles", "Pharma",
    "Networks", "Retail", "Learning", "Insurance", "Steel", "Freight", "Devices", "Cloud",
    "Data", "Security", "Optics", "Materials", "Chemicals", "Consulting", "Interactive",
    "Mobility", "Water", "Agri", "Telecom", "Solutions", "Industries", "Works", "Partners",
    "Technologies",
)  # fmt: skip
_COMPANY_C = ("", "Group", "Holding", "International", "Europe", "Digital", "Studio", "One")
_SIZE_BANDS = (
    (10, "1-9"),
    (50, "10-49"),
    (200, "50-199"),
    (500, "200-499"),
    (1000, "500-999"),
    (5000, "1000-4999"),
    (10**12, "5000+"),
)

# (kind, share) of the touchpoints marketing records
_MARKETING_KINDS = (
    (TouchpointKind.WEB_VISIT, 40.0),
    (TouchpointKind.EMAIL_OPEN, 24.0),
    (TouchpointKind.EMAIL_CLICK, 10.0),
    (TouchpointKind.FORM_SUBMIT, 5.0),
    (TouchpointKind.CONTENT_DOWNLOAD, 9.0),
    (TouchpointKind.WEBINAR_ATTENDED, 4.0),
    (TouchpointKind.EVENT_ATTENDED, 3.0),
    (TouchpointKind.DEMO_REQUEST, 1.5),
)
_FIRST_TOUCH_SPLIT = ((TouchpointKind.CALL, 60.0), (TouchpointKind.SALES_EMAIL, 40.0))
_SALES_KINDS = (
    (TouchpointKind.CALL, 35.0),
    (TouchpointKind.SALES_EMAIL, 35.0),
    (TouchpointKind.MEETING, 20.0),
    (TouchpointKind.NOTE, 10.0),
)
# (metadata, share) per kind
_METADATA: dict[str, tuple[tuple[dict, float], ...]] = {
    TouchpointKind.WEB_VISIT: (
        ({"url": "/"}, 4.0),
        ({"url": "/product"}, 3.0),
        ({"url": "/pricing"}, 2.0),
        ({"url": "/customers"}, 1.5),
        ({"url": "/blog/mql-definition"}, 2.0),
        ({"url": "/blog/speed-to-lead"}, 1.5),
        ({"url": "/docs/api"}, 1.0),
    ),
    TouchpointKind.EMAIL_OPEN: tuple(
        ({"email": e}, 1.0)
        for e in ("Monthly newsletter", "RevOps playbook 1", "RevOps playbook 2", "Invitation")
    ),
    TouchpointKind.EMAIL_CLICK: tuple(
        ({"email": e}, 1.0)
        for e in ("Monthly newsletter", "RevOps playbook 1", "RevOps playbook 2", "Invitation")
    ),
    TouchpointKind.FORM_SUBMIT: (
        ({"form": "newsletter"}, 3.0),
        ({"form": "contact"}, 1.0),
        ({"form": "sla-calculator"}, 2.0),
    ),
    TouchpointKind.CONTENT_DOWNLOAD: (
        ({"asset": "The shared funnel (ebook)"}, 2.0),
        ({"asset": "MQL definition template"}, 1.5),
        ({"asset": "SLA checklist"}, 1.0),
    ),
    TouchpointKind.WEBINAR_ATTENDED: (
        ({"webinar": "MQL definitions that stick"}, 1.0),
        ({"webinar": "Speed-to-lead in practice"}, 1.0),
    ),
    TouchpointKind.EVENT_ATTENDED: (
        ({"event": "RevOps Summit Berlin"}, 1.0),
        ({"event": "Sales Leaders Forum London"}, 1.0),
    ),
    TouchpointKind.DEMO_REQUEST: (({"form": "demo"}, 1.0),),
    TouchpointKind.CALL: (
        ({"outcome": "connected"}, 3.0),
        ({"outcome": "voicemail"}, 2.0),
        ({"outcome": "no_answer"}, 2.0),
    ),
    TouchpointKind.SALES_EMAIL: (
        ({"template": "intro"}, 2.0),
        ({"template": "follow-up"}, 2.0),
        ({"template": "proposal"}, 1.0),
    ),
    TouchpointKind.MEETING: (
        ({"type": "discovery"}, 3.0),
        ({"type": "demo"}, 2.0),
        ({"type": "negotiation"}, 1.0),
    ),
    TouchpointKind.NOTE: (
        ({"text": "Asked to be called back next week."}, 1.0),
        ({"text": "Budget confirmed for next quarter."}, 1.0),
        ({"text": "Evaluating two other vendors."}, 1.0),
    ),
}
# which campaign channels a touchpoint of each kind can be attributed to
_KIND_CHANNELS: dict[str, tuple[str, ...]] = {
    TouchpointKind.WEB_VISIT: (
        Channel.PAID_SEARCH,
        Channel.PAID_SOCIAL,
        Channel.SEO,
        Channel.ORGANIC_SOCIAL,
        Channel.CONTENT,
        Channel.REFERRAL,
        Channel.PARTNER,
        Channel.OTHER,
    ),
    TouchpointKind.EMAIL_OPEN: (Channel.EMAIL,),
    TouchpointKind.EMAIL_CLICK: (Channel.EMAIL,),
    TouchpointKind.FORM_SUBMIT: (
        Channel.PAID_SEARCH,
        Channel.PAID_SOCIAL,
        Channel.CONTENT,
        Channel.SEO,
        Channel.WEBINAR,
        Channel.EVENT,
    ),
    TouchpointKind.CONTENT_DOWNLOAD: (Channel.CONTENT, Channel.PAID_SOCIAL, Channel.EMAIL),
    TouchpointKind.WEBINAR_ATTENDED: (Channel.WEBINAR,),
    TouchpointKind.EVENT_ATTENDED: (Channel.EVENT,),
    TouchpointKind.DEMO_REQUEST: (
        Channel.PAID_SEARCH,
        Channel.SEO,
        Channel.REFERRAL,
        Channel.PARTNER,
        Channel.OUTBOUND,
        Channel.DIRECT_MAIL,
    ),
}

# (code, share) of reasons; rejections of poorly fitting leads are mostly "bad fit"
_REJECT_REASONS_FIT = {
    "bad_fit": 10, "wrong_contact": 6, "no_budget": 18, "no_authority": 12, "not_ready": 30,
    "duplicate": 8, "competitor": 6, "student_job_seeker": 1, "other": 4,
}  # fmt: skip
_REJECT_REASONS_MISFIT = {
    "bad_fit": 40, "wrong_contact": 8, "no_budget": 14, "no_authority": 14, "not_ready": 12,
    "duplicate": 4, "competitor": 2, "student_job_seeker": 8, "other": 3,
}  # fmt: skip
_RECYCLE_REASONS = {"not_ready": 30, "no_response": 40, "timing": 25, "other": 5}
_LATER_RECYCLE_REASONS = {"timing": 50, "not_ready": 50}
_LOST_REASONS = {
    "price": 25, "competitor": 30, "no_decision": 25, "no_budget": 10, "timing": 8, "other": 2,
}  # fmt: skip
_REASON_NOTE = "Details in the call notes."

# the simulation's stage codes
_STAGES = (
    Stage.NEW,
    Stage.NURTURING,
    Stage.MQL,
    Stage.SAL,
    Stage.SQL,
    Stage.OPPORTUNITY,
    Stage.WON,
    Stage.LOST,
    Stage.REJECTED,
    Stage.RECYCLED,
)
NEW, NURTURING, MQL, SAL, SQL, OPPORTUNITY, WON, LOST, REJECTED, RECYCLED = range(len(_STAGES))
# the lifecycle service's own table of which timestamp each stage sets
_STAGE_AT = {
    code: STAGE_TIMESTAMP[stage] for code, stage in enumerate(_STAGES) if stage in STAGE_TIMESTAMP
}
# stages in which the lead keeps the rep it was routed to (recycling hands it back to marketing)
_OWNED = (MQL, SAL, SQL, OPPORTUNITY, WON, LOST, REJECTED)
_OPEN_SALES = tuple(_STAGES.index(stage) for stage in OPEN_SALES_STAGES)
# where a lead that meets the MQL definition must not stay (the scoring service's own list)
_PRE_MQL = tuple(_STAGES.index(stage) for stage in PRE_MQL_STAGES)
_MAX_MQLS = 2
# the event of a move besides lead.stage_changed, by the stage it goes to
_MOVE_EVENTS = {
    MQL: EventType.LEAD_MQL,
    SAL: EventType.LEAD_ACCEPTED,
    REJECTED: EventType.LEAD_REJECTED,
    RECYCLED: EventType.LEAD_RECYCLED,
    WON: EventType.LEAD_WON,
    LOST: EventType.LEAD_LOST,
}


# --- the hidden model ----------------------------------------------------------------------------
# Logits of each step of the funnel. Fit and engagement are centred near 0 for a typical lead.


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _engagement(n_marketing, n_demo, n_live, n_content, n_pricing) -> np.ndarray:
    return (
        0.6 * np.log1p(n_marketing)
        + 1.2 * (n_demo > 0)
        + 0.35 * np.minimum(n_live, 2)
        + 0.15 * np.minimum(n_content, 4)
        + 0.3 * np.minimum(n_pricing, 2)
        - 2.1
    )


# --- results -------------------------------------------------------------------------------------


@dataclass
class DemoSummary:
    created: bool
    existing_leads: int = 0
    seed: int = 0
    users: int = 0
    leads: int = 0
    touchpoints: int = 0
    stage_changes: int = 0
    assignments: int = 0
    events: int = 0
    # leads short of MQL that the active scoring model qualifies on their fit alone (see _MqlLine)
    qualified_on_fit: int = 0
    # with score=True: leads scored and the version, or why nothing was scored
    scored: int = 0
    scored_with: str = ""
    unscored: str = ""
    stages: dict[str, int] = field(default_factory=dict)
    # seconds per phase: reference, plan, leads, history, touchpoints, finish, analyze, commit
    # (each writing phase includes the events of its rows)
    timings: dict[str, float] = field(default_factory=dict)
    # seconds spent writing (COPY or bulk_create) per table, inside the phases
    write_seconds: dict[str, float] = field(default_factory=dict)
    bulk_load: bool = False

    @property
    def seconds(self) -> float:
        return sum(self.timings.values())


def demo_data_present() -> int | None:
    """The number of leads when the demo users and some leads exist, else None."""
    if User.objects.filter(username__in=DEMO_USERNAMES).count() < len(DEMO_USERNAMES):
        return None
    return Lead.objects.count() or None


def demo_seed(
    *,
    leads: int = 3000,
    seed: int = 42,
    touchpoints_per_lead: float = 10.0,
    progress: bool = False,
    bulk_load: bool | None = None,
    rebuild_indexes: bool = True,
    demo_logins: bool = False,
    score: bool = False,
) -> DemoSummary:
    """Create the demo company and `leads` leads, unless the demo users and leads exist already.
    With `score` the new leads are scored by the active model in one set-based run: inside the
    bulk load after the touchpoints are indexed and before the lead table's own indexes are built
    (so the run's million row updates maintain no index), otherwise right after the commit.
    With `demo_logins` the demo people can log in with the public password "demo" and `admin` is a
    superuser; without, they have unusable passwords and nobody is staff.

    All or nothing: one transaction, events included. The bulk load (PostgreSQL only) drops the
    foreign keys of the tables it fills and re-adds them at the end, and with `rebuild_indexes`
    also builds the secondary indexes of tables that were empty once at the end: 2.7 times faster
    for a million leads, but it locks those tables and the ones they reference until the commit.
    So it is taken by itself (`bulk_load=None`) only when every table the seed fills is empty,
    where nobody can be waiting for them; True or False forces the choice. Either way the filled
    tables are analysed before the commit, so that the planner knows them at once even when
    autovacuum lags behind."""
    if leads < 0:
        raise DomainError("The number of leads cannot be negative.", field="leads")
    if touchpoints_per_lead < 0:
        raise DomainError(
            "The number of touchpoints per lead cannot be negative.", field="touchpoints_per_lead"
        )
    existing = demo_data_present()
    if existing is not None:
        return DemoSummary(created=False, existing_leads=existing, seed=seed)

    summary = DemoSummary(created=True, seed=seed, leads=leads)
    clock = _Clock(summary.timings)
    now = timezone.now().replace(microsecond=0)
    with transaction.atomic():
        had_leads = Lead.objects.exists()
        # the people first, with or without logins; _reference_data then finds them all
        _ensure_users(demo_logins=demo_logins)
        ctx = _reference_data(seed=seed, now=now)
        summary.users = len(ctx.users)
        clock.lap("reference")
        if leads == 0:
            return summary
        plan = _plan(seed=seed, n=leads, k=touchpoints_per_lead, ctx=ctx)
        if had_leads:
            _avoid_existing_emails(plan.emails)
        # after the e-mails are final: a fit rule may test them
        plan.line = _mql_line(plan, ctx, scoring_model_active())
        if plan.line is not None:
            summary.qualified_on_fit = plan.line.qualified_on_fit(plan.stage)
            if summary.qualified_on_fit:
                logger.warning(
                    "Demo seed: %s leads short of MQL meet the active model's MQL definition on "
                    "their fit alone; the model would make them MQLs.",
                    summary.qualified_on_fit,
                )
        clock.lap("plan")

        sink = _Sink(now=now)
        if bulk_load is None:
            bulk_load = not any(m.objects.exists() for m in _BulkLoad.tables)
        summary.bulk_load = sink.postgres and bulk_load
        loader = _BulkLoad(enabled=summary.bulk_load, rebuild_indexes=rebuild_indexes)
        loader.begin()
        clock.lap("finish")

        # the events' recorded_at: this run
        plan.recorded_at = _Labels([now])
        # every id is known before its row is written, so that its events can name it
        plan.ids = np.arange(leads, dtype=np.int64) + _reserve_ids(Lead, leads)
        changes = len(plan.hist_lead)
        plan.first_change_id = _reserve_ids(StageChange, changes)
        plan.first_assignment_id = _reserve_ids(Assignment, int((plan.hist_to == MQL).sum()))
        # an upper bound: a chunk may leave touchpoints out (see _keep_below_mql)
        plan.first_touchpoint_id = _reserve_ids(Touchpoint, int(plan.n_touch.sum()))

        written = _write_chunks(
            sink,
            _lead_payloads(sink, plan, ctx),
            total=leads,
            desc="leads",
            progress=progress,
        )
        clock.lap("leads")

        written += _write_chunks(
            sink,
            _history_payloads(sink, plan, ctx),
            total=changes,
            desc="history",
            progress=progress,
        )
        assignments = _assignment_columns(plan, ctx)
        for payload in (
            sink.prepare(Assignment, assignments),
            sink.prepare(LeadEvent, _assignment_events(plan, assignments)),
        ):
            sink.write(payload)
            written[payload.model] += payload.rows
        _update_pools(plan, ctx)
        clock.lap("history")

        written += _write_chunks(
            sink,
            _touchpoint_payloads(sink, plan, ctx),
            total=int(plan.n_touch.sum()),
            desc="touchpoints",
            progress=progress,
        )
        clock.lap("touchpoints")

        loader.end(except_leads=score)
        clock.lap("finish")
        if sink.postgres:
            _analyze(_BulkLoad.tables)
        clock.lap("analyze")
        if score and summary.bulk_load:
            _score(summary)
            clock.lap("score")
            loader.end()
            # the statistics of the expression indexes (the search's) come with their index
            _analyze((Lead,))
            clock.lap("finish")
    # with foreign keys in place, their deferred checks run here
    clock.lap("commit")
    if score and not summary.bulk_load:
        _score(summary)
        clock.lap("score")
    if summary.bulk_load and not connection.in_atomic_block:
        # the visibility map lets the routing's capacity count read the (owner, stage) index
        # alone; a freshly loaded table has none until a vacuum, and autovacuum may lag or be off
        with connection.cursor() as cursor:
            cursor.execute(f'VACUUM "{Lead._meta.db_table}"')
        clock.lap("vacuum")
    summary.stage_changes = written[StageChange]
    summary.assignments = written[Assignment]
    summary.touchpoints = written[Touchpoint]
    summary.events = written[LeadEvent]
    summary.write_seconds = dict(sink.seconds)
    summary.stages = {
        _STAGES[code].value: int(count)
        for code, count in enumerate(np.bincount(plan.stage, minlength=len(_STAGES)))
    }
    return summary


def _write_chunks(
    sink: "_Sink", payloads: Iterator["_Payload"], *, total: int, desc: str, progress: bool
) -> Counter:
    """Write the payloads, preparing the next one meanwhile; returns the rows written per model.
    The bar counts the rows of the first model (the events of each chunk follow its rows)."""
    written: Counter = Counter()
    counted = None
    with tqdm(
        total=total, desc=desc, unit=" rows", unit_scale=True, disable=not progress, file=sys.stderr
    ) as bar:
        for payload in _ahead(payloads):
            sink.write(payload)
            written[payload.model] += payload.rows
            counted = counted or payload.model
            if payload.model is counted:
                bar.update(payload.rows)
    return written


class _Clock:
    def __init__(self, timings: dict[str, float]):
        self.timings = timings
        self.last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.timings[name] = self.timings.get(name, 0.0) + now - self.last
        self.last = now


# --- reference data: people, sources, campaigns, rules, reasons -----------------------------------


@dataclass
class _Context:
    now: datetime
    users: dict[str, User]
    rep_ids: np.ndarray  # rep1..rep6
    source_ids: dict[str, int]
    organic_source_ids: np.ndarray
    organic_source_p: np.ndarray
    campaign_ids: np.ndarray
    campaign_channel: list[str]
    campaign_source_ids: np.ndarray
    campaign_start: np.ndarray  # seconds relative to now
    campaign_end: np.ndarray
    campaign_lead_end: np.ndarray  # end plus the tail in which its leads still arrive
    campaign_weight: np.ndarray
    campaign_effect: np.ndarray
    rule_ids: np.ndarray
    rule_names: list[str]
    # per rule: rep index (into rep_ids) and weight of each pool member
    rule_reps: list[np.ndarray]
    rule_weights: list[np.ndarray]
    reason_ids: np.ndarray
    reason_requires_note: np.ndarray
    # code of each reason row, after None (index reason + 1): what an event's payload names
    reason_codes: "_Labels"
    # name -> (reason row indexes, cumulative probabilities)
    reason_tables: dict[str, tuple[np.ndarray, np.ndarray]]
    reason_recycles: np.ndarray


def _reference_data(*, seed: int, now: datetime) -> _Context:
    rng = np.random.default_rng([seed, 0])
    users = _ensure_users()
    sources = {}
    for name in sorted({c.source for c in _CAMPAIGNS} | {name for name, _ in _ORGANIC_SOURCES}):
        source, _ = Source.objects.get_or_create(key=normalise_key(name), defaults={"name": name})
        sources[name] = source.pk

    today = now.date()
    campaign_ids, start, end, lead_end = [], [], [], []
    for spec in _CAMPAIGNS:
        starts_on = today - timedelta(days=spec.starts_days_ago)
        ends_on = starts_on + timedelta(days=spec.days - 1) if spec.days else None
        low, high = spec.budget
        campaign, _ = Campaign.objects.get_or_create(
            name=spec.name,
            defaults={
                "channel": spec.channel,
                "starts_on": starts_on,
                "ends_on": ends_on,
                "budget": Decimal(int(rng.integers(low * 2, high * 2 + 1)) * 500),
                "marketing_owner": users[spec.marketing_owner],
                "sales_owner": users[spec.sales_owner],
                "utm_source": spec.utm_source,
                "utm_medium": spec.utm_medium,
                "utm_campaign": spec.utm_campaign,
                "created_at": now - timedelta(days=spec.starts_days_ago + 14),
            },
        )
        campaign_ids.append(campaign.pk)
        # offsets from now, not calendar days: the same seed gives the same leads at any hour
        begins = -spec.starts_days_ago * DAY
        finishes = begins + spec.days * DAY - 1 if spec.days else 10 * DAY
        start.append(begins)
        end.append(finishes)
        lead_end.append(finishes + _LEAD_TAIL_DAYS.get(spec.channel, 0) * DAY)

    rule_ids, rule_reps, rule_weights = [], [], []
    for spec in _RULES:
        rule, created = AssignmentRule.objects.get_or_create(
            name=spec.name, defaults={"position": spec.position, "conditions": spec.conditions}
        )
        if created:
            PoolMember.objects.bulk_create(
                PoolMember(rule=rule, rep=users[username], weight=weight)
                for username, weight in spec.members.items()
            )
        rule_ids.append(rule.pk)
        rule_reps.append(np.array([REP_USERNAMES.index(u) for u in spec.members]))
        rule_weights.append(np.array(list(spec.members.values()), dtype=float))

    reasons = list(Reason.objects.filter(active=True).order_by("kind", "position", "id"))

    def table(kind: str, shares: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
        rows = [(i, shares[r.code]) for i, r in enumerate(reasons) if r.kind == kind]
        rows = [(i, w) for i, w in rows if w] or [
            (i, 1) for i, r in enumerate(reasons) if r.kind == kind
        ]
        if not rows:
            raise DomainError(
                f"There is no active reason of kind “{kind}”; run the migrations or add one "
                "in the admin."
            )
        index, weights = zip(*rows, strict=True)
        weights = np.cumsum(weights, dtype=float)
        return np.array(index), weights / weights[-1]

    def by_code(values: dict[str, int]) -> dict[str, int]:
        return {r.code: values.get(r.code, 0) for r in reasons}

    organic_p = np.array([share for _, share in _ORGANIC_SOURCES], dtype=float)
    return _Context(
        now=now,
        users=users,
        rep_ids=np.array([users[u].pk for u in REP_USERNAMES], dtype=np.int64),
        source_ids=sources,
        organic_source_ids=np.array([sources[name] for name, _ in _ORGANIC_SOURCES]),
        organic_source_p=organic_p / organic_p.sum(),
        campaign_ids=np.array(campaign_ids, dtype=np.int64),
        campaign_channel=[c.channel for c in _CAMPAIGNS],
        campaign_source_ids=np.array([sources[c.source] for c in _CAMPAIGNS], dtype=np.int64),
        campaign_start=np.array(start, dtype=np.int64),
        campaign_end=np.array(end, dtype=np.int64),
        campaign_lead_end=np.array(lead_end, dtype=np.int64),
        campaign_weight=np.array([c.weight for c in _CAMPAIGNS]),
        campaign_effect=np.array([c.effect for c in _CAMPAIGNS]),
        rule_ids=np.array(rule_ids, dtype=np.int64),
        rule_names=[r.name for r in _RULES],
        rule_reps=rule_reps,
        rule_weights=rule_weights,
        reason_ids=np.array([r.pk for r in reasons], dtype=np.int64),
        reason_requires_note=np.array([r.requires_note for r in reasons], dtype=bool),
        reason_codes=_Labels([None, *(r.code for r in reasons)]),
        reason_recycles=np.array([r.recycles for r in reasons], dtype=bool),
        reason_tables={
            "reject_fit": table(ReasonKind.REJECT, by_code(_REJECT_REASONS_FIT)),
            "reject_misfit": table(ReasonKind.REJECT, by_code(_REJECT_REASONS_MISFIT)),
            "recycle": table(ReasonKind.RECYCLE, by_code(_RECYCLE_REASONS)),
            "recycle_later": table(ReasonKind.RECYCLE, by_code(_LATER_RECYCLE_REASONS)),
            "lost": table(ReasonKind.LOST, by_code(_LOST_REASONS)),
        },
    )


def _ensure_users(*, demo_logins: bool = False) -> dict[str, User]:
    """The demo people who are missing. Only with `demo_logins` can they log in (the password
    "demo" is public) and is `admin` a superuser: a seeded production database has no open door."""
    users = {u.username: u for u in User.objects.filter(username__in=DEMO_USERNAMES)}
    missing = [p for p in PEOPLE if p.username not in users]
    if missing:
        # one hash for all: the password is public anyway, and each hash costs a third of a second
        password = make_password(DEMO_PASSWORD) if demo_logins else None
        for person in missing:
            users[person.username] = User.objects.create(
                username=person.username,
                # make_password(None) is a distinct unusable password for each person
                password=password or make_password(None),
                first_name=person.first_name,
                last_name=person.last_name,
                email=f"{person.first_name}.{person.last_name}@demo.example".lower(),
                role=person.role,
                is_staff=person.admin and demo_logins,
                is_superuser=person.admin and demo_logins,
                capacity=person.capacity,
                working_timezone=person.working_timezone,
                available=person.available,
            )
    return users


# --- the plan: every lead-level column, and the funnel each lead went through ---------------------


class _Plan:
    """Column arrays of the leads to write (index = lead number in this batch)."""

    n: int
    seed: int
    ids: np.ndarray
    # the first reserved id of each table (rows take them in order)
    first_change_id: int
    first_assignment_id: int
    first_touchpoint_id: int
    line: "_MqlLine | None"
    recorded_at: "_Labels"


def _choice(rng: np.random.Generator, shares, size: int) -> np.ndarray:
    p = np.asarray(shares, dtype=float)
    return rng.choice(len(p), size=size, p=p / p.sum())


def _plan(*, seed: int, n: int, k: float, ctx: _Context) -> _Plan:
    rng = np.random.default_rng([seed, 1])
    p = _Plan()
    p.n, p.seed = n, seed

    # companies: several leads share one, bigger companies send more
    space = len(_COMPANY_A) * len(_COMPANY_B) * len(_COMPANY_C)
    n_companies = int(np.clip(n // 6, min(30, space), space))
    combo = rng.choice(space, size=n_companies, replace=False)
    a, rest = np.divmod(combo, len(_COMPANY_B) * len(_COMPANY_C))
    b, c = np.divmod(rest, len(_COMPANY_C))
    country = _choice(rng, [x[1] for x in _COUNTRIES], n_companies)
    industry = _choice(rng, [x[1] for x in _INDUSTRIES], n_companies)
    size = np.clip(np.rint(rng.lognormal(4.0, 1.7, n_companies)), 2, 150_000).astype(np.int64)
    legal = rng.integers(0, 6, n_companies)
    revenue = np.maximum(0.1, np.round(size * 0.15 * rng.lognormal(0, 0.6, n_companies), 1))
    names, domains = [], []
    for i in range(n_companies):
        words = [_COMPANY_A[a[i]], _COMPANY_B[b[i]], _COMPANY_C[c[i]]]
        forms = _COUNTRIES[country[i]][3]
        names.append(" ".join(w for w in words if w) + " " + forms[legal[i] % len(forms)])
        domains.append("-".join(w.lower() for w in words if w) + ".example")
    p.company_country = country
    p.company_industry = industry
    p.company_size = size
    p.company_names = _Labels(names)
    p.company_websites = _Labels([f"https://www.{d}" for d in domains])
    bands = np.searchsorted([limit for limit, _ in _SIZE_BANDS], size, side="right")
    # attributes as an import would bring them: two variants per company (uses a competitor)
    p.attribute_labels = _Labels(
        [
            json.dumps(
                {
                    "employees_band": _SIZE_BANDS[bands[i]][1],
                    "annual_revenue_musd": float(revenue[i]),
                    "uses_competitor": bool(uses),
                }
            )
            for i in range(n_companies)
            for uses in (False, True)
        ],
        json_values=True,
    )

    # people
    weight = size.astype(float) ** 0.3
    company = rng.choice(n_companies, size=n, p=weight / weight.sum())
    first = rng.integers(0, len(_FIRST_NAMES), n)
    last = rng.integers(0, len(_LAST_NAMES), n)
    title = _choice(rng, [t[1] for t in _TITLES], n)
    uses_competitor = rng.random(n) < 0.3
    has_phone = rng.random(n) < 0.6
    phone_number = rng.integers(10_000_000, 99_999_999, n)
    p.company, p.first, p.last, p.title = company, first, last, title
    p.uses_competitor = uses_competitor
    p.emails = _emails(company, first, last, domains)
    prefixes = [c[4] for c in _COUNTRIES]
    p.phones = [
        f"{prefixes[country[co]]} {number}" if has else ""
        for co, number, has in zip(
            company.tolist(), phone_number.tolist(), has_phone.tolist(), strict=True
        )
    ]

    # arrival: a year of leads, more of them lately
    p.created = -(np.rint(365 * DAY * rng.random(n) ** 1.3).astype(np.int64) + 60)
    _attribute(rng, p, ctx)

    # touchpoints by marketing: how many, and of which kinds (the engagement signal)
    intensity = rng.gamma(2.0, 0.5, n)
    p.n_marketing = rng.poisson(k * intensity)
    total = int(p.n_marketing.sum())
    kinds = [kind for kind, _ in _MARKETING_KINDS]
    p.marketing_kind = _choice(rng, [s for _, s in _MARKETING_KINDS], total).astype(np.int8)
    p.marketing_meta = _metadata_codes(rng, kinds, p.marketing_kind)
    owner_of_touch = np.repeat(np.arange(n), p.n_marketing)

    def count(mask: np.ndarray) -> np.ndarray:
        return np.bincount(owner_of_touch[mask], minlength=n)

    def kind_is(*wanted: str) -> np.ndarray:
        return np.isin(p.marketing_kind, [kinds.index(w) for w in wanted])

    pricing = _META_LABELS.values.index(json.dumps({"url": "/pricing"}))
    p.n_demo = count(kind_is(TouchpointKind.DEMO_REQUEST))
    engagement = _engagement(
        p.n_marketing,
        n_demo=p.n_demo,
        n_live=count(kind_is(TouchpointKind.WEBINAR_ATTENDED, TouchpointKind.EVENT_ATTENDED)),
        n_content=count(kind_is(TouchpointKind.FORM_SUBMIT, TouchpointKind.CONTENT_DOWNLOAD)),
        n_pricing=count(p.marketing_meta == pricing),
    )
    fit = (
        np.array([t[2] for t in _TITLES])[title]
        + 0.55 * np.clip(np.log10(size[company]) - 2.0, -1.2, 2.0)
        + np.array([x[2] for x in _INDUSTRIES])[industry[company]]
        + np.array([x[2] for x in _COUNTRIES])[country[company]]
        + 0.35 * uses_competitor
        - 0.45
    )
    effect = np.where(p.campaign >= 0, ctx.campaign_effect[np.maximum(p.campaign, 0)], 0.0)
    p.fit = fit
    p.p_mql = _sigmoid(-1.7 + 1.0 * fit + 0.8 * engagement + effect)
    p.p_accept = _sigmoid(0.8 + 0.9 * fit + 0.2 * engagement + 0.5 * effect)
    p.p_sql = _sigmoid(0.5 + 0.8 * fit + 0.3 * engagement)
    p.p_opportunity = _sigmoid(0.6 + 0.7 * fit)
    p.p_won = _sigmoid(-0.8 + 0.9 * fit + 0.4 * engagement)

    # routing as the rules would do it: first matching rule, weighted pick in its pool
    in_dach = np.isin(country[company], [i for i, x in enumerate(_COUNTRIES) if x[0] in _DACH])
    p.rule = np.where(in_dach, 0, np.where(size[company] >= _ENTERPRISE_SIZE, 1, 2))
    pick = rng.random(n)
    p.rep = np.zeros(n, dtype=np.int64)
    for r, (reps, weights) in enumerate(zip(ctx.rule_reps, ctx.rule_weights, strict=True)):
        mask = p.rule == r
        cumulative = np.cumsum(weights) / weights.sum()
        p.rep[mask] = reps[np.minimum(np.searchsorted(cumulative, pick[mask]), len(reps) - 1)]

    _simulate(rng, p, ctx)
    _plan_sales_touches(rng, p)
    p.n_touch = p.n_marketing + p.n_sales
    p.touch_offset = np.concatenate([[0], np.cumsum(p.n_touch)])
    p.marketing_offset = np.concatenate([[0], np.cumsum(p.n_marketing)])
    return p


def _emails(company, first, last, domains) -> list[str]:
    """first.last@company-domain; namesakes at one company get a number."""
    order = np.lexsort((np.arange(len(company)), last, first, company))
    key = (company[order] * len(_FIRST_NAMES) + first[order]) * len(_LAST_NAMES) + last[order]
    starts = np.r_[True, key[1:] != key[:-1]]
    group_start = np.maximum.accumulate(np.where(starts, np.arange(len(key)), 0))
    rank = np.empty(len(key), dtype=np.int64)
    rank[order] = np.arange(len(key)) - group_start
    locals_first = [_email_part(x) for x in _FIRST_NAMES]
    locals_last = [_email_part(x) for x in _LAST_NAMES]
    return [
        f"{locals_first[f]}.{locals_last[la]}{r + 1 if r else ''}@{domains[c]}"
        for f, la, r, c in zip(
            first.tolist(), last.tolist(), rank.tolist(), company.tolist(), strict=True
        )
    ]


def _email_part(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def _avoid_existing_emails(emails: list[str]) -> None:
    """Leads already in the table keep their addresses; a generated namesake gets a +tag."""
    taken: set[str] = set()
    for start in range(0, len(emails), 500):
        taken.update(
            Lead.objects.filter(email__in=emails[start : start + 500]).values_list(
                "email", flat=True
            )
        )
    if not taken:
        return
    generated = set(emails)
    for i, email in enumerate(emails):
        if email in taken:
            local, domain = email.split("@", 1)
            tag = 2
            while f"{local}+{tag}@{domain}" in taken | generated:
                tag += 1
            emails[i] = f"{local}+{tag}@{domain}"
            generated.add(emails[i])


def _attribute(rng: np.random.Generator, p: _Plan, ctx: _Context) -> None:
    """Campaign (one running when the lead arrived), source and UTM values of each lead."""
    n = p.n
    running = (p.created[:, None] >= ctx.campaign_start) & (
        p.created[:, None] <= ctx.campaign_lead_end
    )
    p.campaign = _pick_weighted(rng, running * ctx.campaign_weight)
    p.campaign[rng.random(n) >= 0.72] = -1
    organic = _choice(rng, ctx.organic_source_p, n)
    has = p.campaign >= 0
    camp = np.maximum(p.campaign, 0)
    p.source_id = np.where(
        has, ctx.campaign_source_ids[camp], ctx.organic_source_ids[organic]
    ).astype(np.int64)
    p.campaign_id = np.where(has, ctx.campaign_ids[camp], -1)
    # label 0 is the empty value
    p.utm_code = np.where(has, camp + 1, 0)
    channel = np.array(ctx.campaign_channel, dtype=object)[camp]
    term = rng.integers(0, len(_PAID_SEARCH_TERMS), n) + 1
    p.utm_term = np.where(has & (channel == Channel.PAID_SEARCH), term, 0)
    variant = rng.integers(0, len(_AD_VARIANTS), n) + 1
    with_variants = np.isin(channel, [Channel.PAID_SOCIAL, Channel.EMAIL, Channel.DIRECT_MAIL])
    p.utm_content = np.where(has & with_variants, variant, 0)


def _pick_weighted(rng: np.random.Generator, weights: np.ndarray) -> np.ndarray:
    """One column per row, with probability proportional to the row's weights; -1 if all are 0."""
    total = weights.sum(axis=1)
    cumulative = np.cumsum(weights, axis=1)
    target = rng.random(len(weights)) * total
    picked = (cumulative <= target[:, None]).sum(axis=1)
    return np.where(total > 0, np.minimum(picked, weights.shape[1] - 1), -1)


def _simulate(rng: np.random.Generator, p: _Plan, ctx: _Context) -> None:
    """Walk every lead through the funnel until it stops or its next step would be in the future.

    One vectorised step per move; each step draws the same random arrays for all moving leads, so
    the walk is reproducible. Records the path (p.hist_*) and the final per-lead state."""
    n = p.n
    stage = np.full(n, NEW, dtype=np.int8)
    t = p.created.copy()
    reached = np.full((len(_STAGES), n), _NULL, dtype=np.int64)
    first_mql = np.full(n, _NULL, dtype=np.int64)
    mql_count = np.zeros(n, dtype=np.int64)
    touch = np.full(n, _NULL, dtype=np.int64)
    deal = np.full(n, np.nan)
    last_reason = np.full(n, -1, dtype=np.int64)
    will_mql = rng.random(n) < p.p_mql
    direct = will_mql & (((p.n_demo > 0) & (rng.random(n) < 0.7)) | (rng.random(n) < 0.15))
    misfit = p.fit < 0
    deal_base = 50.0 * p.company_size[p.company].astype(float) ** 0.35
    active = np.ones(n, dtype=bool)
    hist: list[tuple[np.ndarray, ...]] = []
    tables = ctx.reason_tables

    def reason(name: str, u: np.ndarray) -> np.ndarray:
        index, cumulative = tables[name]
        return index[np.minimum(np.searchsorted(cumulative, u, side="right"), len(index) - 1)]

    while True:
        idx = np.flatnonzero(active)
        if not idx.size:
            break
        m = idx.size
        s = stage[idx]
        u, v, r = rng.random(m), rng.random(m), rng.random(m)
        x, x2 = rng.exponential(1.0, m), rng.exponential(1.0, m)
        z = rng.standard_normal(m)
        to = np.full(m, -1, dtype=np.int8)
        delay = np.zeros(m)
        why = np.full(m, -1, dtype=np.int64)
        by_rep = np.zeros(m, dtype=bool)
        count = mql_count[idx]

        sel = s == NEW
        go = sel & direct[idx]
        to[go], delay[go] = MQL, 600 + x[go] * DAY / 2
        go = sel & ~direct[idx] & (will_mql[idx] | (u < 0.78))
        to[go], delay[go] = NURTURING, HOUR + x[go] * 2 * DAY

        sel = s == NURTURING
        again = (count > 0) & (count < _MAX_MQLS) & (u < 0.3)
        go = sel & (((count == 0) & will_mql[idx]) | again)
        to[go], delay[go] = MQL, DAY + x[go] * 21 * DAY

        # the rep touches the lead first, then decides; a third of the decisions take days
        sel = s == MQL
        pondering = np.where(v < 0.65, x, x * 6)
        delay[sel] = (touch[idx] - t[idx])[sel] + 1800 + pondering[sel] * DAY
        by_rep |= sel
        go = sel & (u < p.p_accept[idx])
        to[go] = SAL
        go = sel & ~(u < p.p_accept[idx])
        why[go] = np.where(
            misfit[idx][go], reason("reject_misfit", r[go]), reason("reject_fit", r[go])
        )
        to[go] = np.where(ctx.reason_recycles[why[go]], RECYCLED, REJECTED)

        sel = s == SAL
        by_rep |= sel
        go = sel & (u < p.p_sql[idx])
        to[go], delay[go] = SQL, DAY + x[go] * 6 * DAY
        fail = sel & ~go
        recycle = fail & (v < 0.7)
        to[recycle], why[recycle] = RECYCLED, reason("recycle", r[recycle])
        lose = fail & ~recycle
        to[lose], why[lose] = LOST, reason("lost", r[lose])
        delay[fail] = 2 * DAY + x[fail] * 10 * DAY

        sel = s == SQL
        by_rep |= sel
        go = sel & (u < p.p_opportunity[idx])
        to[go], delay[go] = OPPORTUNITY, DAY + x[go] * 8 * DAY
        fail = sel & ~go
        recycle = fail & (v < 0.5)
        to[recycle], why[recycle] = RECYCLED, reason("recycle", r[recycle])
        lose = fail & ~recycle
        to[lose], why[lose] = LOST, reason("lost", r[lose])
        delay[fail] = 3 * DAY + x[fail] * 12 * DAY

        sel = s == OPPORTUNITY
        by_rep |= sel
        win = sel & (u < p.p_won[idx])
        to[win] = WON
        lose = sel & ~win
        to[lose], why[lose] = LOST, reason("lost", r[lose])
        delay[sel] = 10 * DAY + x[sel] * 30 * DAY

        # marketing takes some closed leads back for nurturing, months later
        sel = ((s == LOST) | (s == REJECTED)) & (count < _MAX_MQLS) & (u < 0.12)
        to[sel], why[sel] = RECYCLED, reason("recycle_later", r[sel])
        delay[sel] = 30 * DAY + x[sel] * 60 * DAY

        sel = s == RECYCLED
        go = sel & (count < _MAX_MQLS) & (u < 0.25)
        to[go], delay[go] = MQL, 14 * DAY + x[go] * 45 * DAY
        go = sel & ~go & (u < 0.55)
        to[go], delay[go] = NURTURING, 2 * DAY + x[go] * 5 * DAY

        at = t[idx] + delay.astype(np.int64)
        moves = (to >= 0) & (at < 0)
        active[idx[~moves]] = False
        j, to, at = idx[moves], to[moves], at[moves]
        why, by_rep = why[moves], by_rep[moves]
        v, x2, z = v[moves], x2[moves], z[moves]

        entering = to == MQL
        jj = j[entering]
        mql_count[jj] += 1
        first_mql[jj] = np.where(first_mql[jj] == _NULL, at[entering], first_mql[jj])
        # most reps answer within hours; some let it slip for days
        wait = np.where(v[entering] < 0.85, x2[entering] * 5 * HOUR, x2[entering] * 3 * DAY)
        touch[jj] = at[entering] + 300 + wait.astype(np.int64)
        entering = to == OPPORTUNITY
        deal[j[entering]] = np.round(deal_base[j[entering]] * np.exp(0.45 * z[entering])) * 100
        entering = to == WON
        deal[j[entering]] = np.round(deal[j[entering]] * np.exp(0.12 * z[entering]) / 100) * 100
        has_reason = why >= 0
        last_reason[j[has_reason]] = why[has_reason]

        hist.append(
            (
                j,
                stage[j].copy(),
                to.copy(),
                at,
                by_rep,
                why,
                np.where((to == OPPORTUNITY) | (to == WON), deal[j], np.nan),
            )
        )
        stage[j] = to
        t[j] = at
        reached[to, j] = at

    p.stage, p.stage_changed_at, p.reached = stage, t, reached
    p.first_mql_at, p.mql_count, p.deal, p.last_reason = first_mql, mql_count, deal, last_reason
    owned = np.isin(stage, _OWNED)
    p.owner = np.where(owned, ctx.rep_ids[p.rep], -1)
    p.assigned_at = np.where(owned, reached[MQL], _NULL)
    # speed-to-lead: the first sales touch after the current MQL, once it has happened
    p.touch_at = np.where((mql_count > 0) & (touch < 0), touch, _NULL)
    if hist:
        joined = [np.concatenate(c) for c in zip(*hist, strict=True)]
    else:
        joined = [np.zeros(0, dtype=np.int64) for _ in range(7)]
    order = np.lexsort((joined[3], joined[0]))
    (
        p.hist_lead,
        p.hist_from,
        p.hist_to,
        p.hist_at,
        p.hist_by_rep,
        p.hist_reason,
        p.hist_deal,
    ) = (c[order] for c in joined)
    p.hist_by = np.where(p.hist_by_rep, ctx.rep_ids[p.rep[p.hist_lead]], -1)


def _plan_sales_touches(rng: np.random.Generator, p: _Plan) -> None:
    """Sales touchpoints of the current MQL: the first touch, then more the further it went."""
    extra = np.array([0.5, 0.5, 0.3, 1.0, 2.0, 3.5, 5.0, 3.5, 0.2, 0.8])[p.stage]
    touched = p.touch_at != _NULL
    p.n_sales = np.where(touched, 1 + rng.poisson(extra), 0)
    open_now = np.isin(p.stage, _OPEN_SALES)
    p.sales_end = np.where(open_now, -1, np.maximum(p.stage_changed_at, p.touch_at))
    # marketing's touches lead up to the first MQL; some keep coming afterwards
    keeps_going = rng.random(p.n) < 0.15
    p.marketing_end = np.where(
        (p.mql_count > 0) & ~keeps_going, p.first_mql_at, np.full(p.n, -1, dtype=np.int64)
    )


# --- the active scoring model's MQL line -----------------------------------------------------------
# The real-time scoring makes a lead in new, nurturing or recycled an MQL as soon as it meets the
# MQL definition; the hidden model above knows nothing of the scoring model, so some leads it
# leaves before MQL would qualify. Each touchpoint chunk leaves out their heaviest engagement
# until they are below the line (_keep_below_mql): the demo agrees with its own model.

# below the line by at least this much, against float sums done in another order (SQL, Python)
_MQL_MARGIN = 0.01


@dataclass(frozen=True)
class _MqlLine:
    """The active model's MQL definition as the plan needs it: what each lead's fit is made of,
    and the points each touchpoint variant (kind, metadata, campaign) adds per engagement
    bucket. Negative engagement points are left out, so the engagement computed at the seed's
    instant bounds every later one (decay only shrinks what is left)."""

    mql_total: float
    mql_fit: int
    half_life_seconds: float
    # per fit group ("" for rules without a cap): points per lead of the rules on shared values
    fit_parts: dict[str, np.ndarray]
    fit_caps: dict[str, int]
    # rules on per-lead values, with those values (index = lead number)
    lead_rules: tuple[tuple[Any, str, list], ...]
    points: np.ndarray  # [variant, bucket]
    caps: np.ndarray  # per bucket, inf where uncapped
    metas: int
    campaigns: int  # campaigns + 1 ("none" first)

    def variant(self, kind: np.ndarray, meta: np.ndarray, campaign: np.ndarray) -> np.ndarray:
        return (kind * self.metas + meta) * self.campaigns + campaign + 1

    def fit(self, leads: np.ndarray) -> np.ndarray:
        """The fit score of these leads, summed with the group caps the way `fit_total` does."""
        parts = {group: points[leads] for group, points in self.fit_parts.items()}
        for rule, name, values in self.lead_rules:
            matched = np.fromiter(
                (rule.matches({name: values[i]}) for i in leads.tolist()), bool, len(leads)
            )
            parts[rule.group if rule.group in self.fit_caps else ""] += rule.points * matched
        return parts[""] + sum(
            np.minimum(cap, parts[group]) for group, cap in self.fit_caps.items()
        )

    def qualified_on_fit(self, stage: np.ndarray) -> int:
        """How many leads short of MQL meet the definition on their fit alone, which leaving out
        touchpoints cannot help. There are none with the shipped model (its fit tops out below its
        MQL total); a tuned model may have some."""
        limit = max(self.mql_fit, self.mql_total - _MQL_MARGIN)
        # a bound first, without a rule evaluation per lead
        parts = {group: points.copy() for group, points in self.fit_parts.items()}
        for rule, _, _ in self.lead_rules:
            parts[rule.group if rule.group in self.fit_caps else ""] += max(rule.points, 0)
        bound = parts[""] + sum(
            np.minimum(cap, parts[group]) for group, cap in self.fit_caps.items()
        )
        maybe = np.flatnonzero(np.isin(stage, _PRE_MQL) & (bound >= limit))
        return int((self.fit(maybe) >= limit).sum()) if maybe.size else 0


def _mql_line(p: _Plan, ctx: _Context, model: CompiledModel | None) -> _MqlLine | None:
    if model is None:
        return None
    buckets = sorted({rule.bucket for rule in model.engagement_rules})
    metas = _META_LABELS.python().tolist()
    campaigns = [None, *ctx.campaign_ids.tolist()]
    points = np.zeros((len(_TOUCH_KINDS), len(metas), len(campaigns), max(len(buckets), 1)))
    for k, kind in enumerate(_TOUCH_KINDS):
        if kind not in model.kinds:
            continue
        for m, meta in enumerate(metas):
            for c, campaign_id in enumerate(campaigns):
                for bucket, value in model.touchpoint_points(kind, campaign_id, meta).items():
                    points[k, m, c, buckets.index(bucket)] = max(value, 0)
    caps = [np.inf if b == UNCAPPED else model.group_caps.get(b, np.inf) for b in buckets]
    fit_caps = {
        r.group: model.group_caps[r.group]
        for r in model.fit_rules
        if model.cap(r.group) is not None
    }
    fit_parts = {group: np.zeros(p.n, dtype=np.int64) for group in ("", *fit_caps)}
    lead_rules = []
    shared = _fit_values(p, ctx)
    # values that differ from lead to lead: their rules are evaluated per chunk, only for the
    # leads that need a fit (a million e-mail addresses would cost seconds up front)
    per_lead = {"email": p.emails, "phone": p.phones}
    for rule in model.fit_rules:
        name = "attributes" if rule.field.startswith(ATTRIBUTE_PREFIX) else rule.field
        if name in per_lead:
            lead_rules.append((rule, name, per_lead[name]))
            continue
        # a field the demo does not fill keeps its empty default
        codes, values = shared.get(name, (np.zeros(p.n, dtype=np.int64), [None]))
        matched = np.array([rule.matches({name: v}) for v in values], dtype=bool)[codes]
        fit_parts[rule.group if rule.group in fit_caps else ""] += rule.points * matched
    return _MqlLine(
        mql_total=float(model.mql_total),
        mql_fit=model.mql_fit,
        half_life_seconds=model.half_life_seconds,
        fit_parts=fit_parts,
        fit_caps=fit_caps,
        lead_rules=tuple(lead_rules),
        points=points.reshape(-1, points.shape[-1]),
        caps=np.array(caps or [np.inf], dtype=float),
        metas=len(metas),
        campaigns=len(campaigns),
    )


def _fit_values(p: _Plan, ctx: _Context) -> dict[str, tuple[np.ndarray, list]]:
    """What fit rules read from the lead row, field by field, but e-mail and phone: a code per
    lead and the value of each code, so that a rule is evaluated once per distinct value (per
    company, per title, ...)."""
    company = p.company
    key_of = {pk: normalise_key(name) for name, pk in ctx.source_ids.items()}
    sources, source_code = np.unique(p.source_id, return_inverse=True)
    return {
        "first_name": (p.first, list(_FIRST_NAMES)),
        "last_name": (p.last, list(_LAST_NAMES)),
        "title": (p.title, _TITLE_LABELS.values),
        "company": (company, p.company_names.values),
        "website": (company, p.company_websites.values),
        "company_size": (company, p.company_size.tolist()),
        "industry": (company, [_INDUSTRIES[i][0] for i in p.company_industry.tolist()]),
        "country": (company, [_COUNTRIES[i][0] for i in p.company_country.tolist()]),
        **{name: (p.utm_code, labels.values) for name, labels in _UTM_LABELS.items()},
        "utm_term": (p.utm_term, _TERM_LABELS.values),
        "utm_content": (p.utm_content, _VARIANT_LABELS.values),
        "source": (source_code, [key_of.get(pk) for pk in sources.tolist()]),
        "attributes": (company * 2 + p.uses_competitor, p.attribute_labels.python().tolist()),
    }


def _keep_below_mql(
    line: _MqlLine,
    stage: np.ndarray,
    lead: np.ndarray,
    at: np.ndarray,
    variant: np.ndarray,
    droppable: np.ndarray,
) -> np.ndarray | None:
    """Which touchpoints of a chunk to write (None: all of them) so that no lead that ends in
    new, nurturing or recycled meets the MQL definition. A lead over the line loses its heaviest
    droppable touchpoints (after decay), one after the other, until it is below."""
    t = np.flatnonzero(np.isin(stage[lead], _PRE_MQL))
    who, member = np.unique(lead[t], return_inverse=True)
    fit = line.fit(who)
    fits = fit[member] >= line.mql_fit
    t, member = t[fits], member[fits]
    if not t.size:
        return None
    weight = line.points[variant[t]] * np.exp2(at[t] / line.half_life_seconds)[:, None]
    sums = np.stack(
        [
            np.bincount(member, weights=weight[:, b], minlength=len(who))
            for b in range(len(line.caps))
        ],
        axis=1,
    )
    limit = line.mql_total - _MQL_MARGIN
    over = fit + np.minimum(sums, line.caps).sum(axis=1) >= limit
    if not over.any():
        return None
    heavy = weight.sum(axis=1)
    pick = over[member] & droppable[t] & (heavy > 0)
    t, member, weight, heavy = t[pick], member[pick], weight[pick], heavy[pick]
    order = np.lexsort((-heavy, member))  # per lead, the heaviest first
    t, member, weight = t[order], member[order], weight[order]
    first = np.maximum.accumulate(
        np.where(np.r_[True, member[1:] != member[:-1]], np.arange(len(member)), 0)
    )
    removed = np.cumsum(weight, axis=0)
    removed -= removed[first] - weight[first]
    left = fit[member] + np.minimum(sums[member] - removed, line.caps).sum(axis=1)
    below = left < limit
    seen = np.cumsum(below)
    # drop every touchpoint up to the first one whose removal brings the lead below the line
    below_before = seen - below - (seen[first] - below[first]) > 0
    keep = np.ones(len(lead), dtype=bool)
    keep[t[~below_before]] = False
    return keep


# --- metadata labels -----------------------------------------------------------------------------


class _Labels:
    """The distinct values of a categorical column, each formatted once per output."""

    def __init__(self, values: list[Any], *, json_values: bool = False):
        self.values = list(values)
        self.json_values = json_values
        self._csv: np.ndarray | None = None
        self._python: np.ndarray | None = None
        self._json: np.ndarray | None = None

    def csv(self) -> np.ndarray:
        if self._csv is None:
            self._csv = np.array([_csv_literal(v) for v in self.values], dtype=object)
        return self._csv

    def json_csv(self) -> np.ndarray:
        """Each value as JSON text, its quotes doubled for a quoted CSV field."""
        if self._json is None:
            texts = self.values if self.json_values else [json.dumps(v) for v in self.values]
            self._json = np.array([t.replace('"', '""') for t in texts], dtype=object)
        return self._json

    def python(self) -> np.ndarray:
        if self._python is None:
            values = [json.loads(v) for v in self.values] if self.json_values else self.values
            self._python = np.empty(len(values), dtype=object)
            self._python[:] = values
        return self._python


def _build_metadata_labels() -> tuple[_Labels, dict[str, tuple[int, np.ndarray]]]:
    values = [json.dumps({})]
    table = {}
    for kind, variants in _METADATA.items():
        codes = []
        for meta, _ in variants:
            text = json.dumps(meta)
            if text not in values:
                values.append(text)
            codes.append(values.index(text))
        shares = np.cumsum([share for _, share in variants], dtype=float)
        table[kind] = (np.array(codes), shares / shares[-1])
    return _Labels(values, json_values=True), table


_META_LABELS, _META_TABLE = _build_metadata_labels()
_TOUCH_KINDS = [kind for kind, _ in _MARKETING_KINDS] + [
    kind for kind, _ in _SALES_KINDS if kind not in dict(_MARKETING_KINDS)
]
_KIND_LABELS = _Labels([str(k) for k in _TOUCH_KINDS])
_SALES_KIND = np.array([kind in SALES_TOUCHPOINT_KINDS for kind in _TOUCH_KINDS], dtype=np.int64)
_STAGE_LABELS = _Labels([str(s) for s in _STAGES])


def _metadata_codes(rng: np.random.Generator, kinds: list[str], codes: np.ndarray) -> np.ndarray:
    """A metadata variant per touchpoint, by its kind (codes index `kinds`)."""
    out = np.zeros(len(codes), dtype=np.int16)
    draw = rng.random(len(codes))
    for number, kind in enumerate(kinds):
        if kind not in _META_TABLE:
            continue
        mask = codes == number
        variants, cumulative = _META_TABLE[kind]
        picked = np.minimum(
            np.searchsorted(cumulative, draw[mask], side="right"), len(variants) - 1
        )
        out[mask] = variants[picked]
    return out


# --- columns per table ---------------------------------------------------------------------------


@dataclass
class _Col:
    """One column of a chunk: kind says how `data` is stored (see _csv_strings/_python_values)."""

    # int, fk (-1 is NULL), cat (codes into labels), text, ts (_NULL is NULL), dec (nan is NULL),
    # json (data: key -> column of any kind but ts, one JSON object per row)
    kind: str
    data: Any
    labels: _Labels | None = None


def _cat(codes: np.ndarray, labels: _Labels) -> _Col:
    return _Col("cat", codes, labels)


_NAME_LABELS = (_Labels(list(_FIRST_NAMES)), _Labels(list(_LAST_NAMES)))
_TITLE_LABELS = _Labels([t[0] for t in _TITLES])
_INDUSTRY_LABELS = _Labels([x[0] for x in _INDUSTRIES])
_COUNTRY_LABELS = _Labels([x[0] for x in _COUNTRIES])
_UTM_LABELS = {
    "utm_source": _Labels([""] + [c.utm_source for c in _CAMPAIGNS]),
    "utm_medium": _Labels([""] + [c.utm_medium for c in _CAMPAIGNS]),
    "utm_campaign": _Labels([""] + [c.utm_campaign for c in _CAMPAIGNS]),
}
_TERM_LABELS = _Labels(["", *_PAID_SEARCH_TERMS])
_VARIANT_LABELS = _Labels(["", *_AD_VARIANTS])


def _lead_columns(p: _Plan, ctx: _Context, start: int, stop: int) -> dict[str, _Col]:
    s = slice(start, stop)
    company = p.company[s]
    reason = p.last_reason[s]
    cols = {
        "id": _Col("int", p.ids[s]),
        "email": _Col("text", p.emails[start:stop]),
        "first_name": _cat(p.first[s], _NAME_LABELS[0]),
        "last_name": _cat(p.last[s], _NAME_LABELS[1]),
        "title": _cat(p.title[s], _TITLE_LABELS),
        "phone": _Col("text", p.phones[start:stop]),
        "company": _cat(company, p.company_names),
        "company_size": _Col("int", p.company_size[company]),
        "industry": _cat(p.company_industry[company], _INDUSTRY_LABELS),
        "country": _cat(p.company_country[company], _COUNTRY_LABELS),
        "website": _cat(company, p.company_websites),
        "source_id": _Col("fk", p.source_id[s]),
        "campaign_id": _Col("fk", p.campaign_id[s]),
        **{name: _cat(p.utm_code[s], labels) for name, labels in _UTM_LABELS.items()},
        "utm_term": _cat(p.utm_term[s], _TERM_LABELS),
        "utm_content": _cat(p.utm_content[s], _VARIANT_LABELS),
        "owner_id": _Col("fk", p.owner[s]),
        "assigned_at": _Col("ts", p.assigned_at[s]),
        "stage": _cat(p.stage[s], _STAGE_LABELS),
        "stage_changed_at": _Col("ts", p.stage_changed_at[s]),
        **{name: _Col("ts", p.reached[code, s]) for code, name in _STAGE_AT.items()},
        "first_mql_at": _Col("ts", p.first_mql_at[s]),
        "mql_count": _Col("int", p.mql_count[s]),
        "first_sales_touch_at": _Col("ts", p.touch_at[s]),
        "deal_value": _Col("dec", p.deal[s]),
        "last_reason_id": _Col("fk", np.where(reason >= 0, ctx.reason_ids[reason], -1)),
        "attributes": _cat(company * 2 + p.uses_competitor[s], p.attribute_labels),
        "created_at": _Col("ts", p.created[s]),
    }
    return cols


_BY_SYSTEM_LABELS = _Labels(["", SEED_SYSTEM])
_NOTE_LABELS = _Labels(["", _REASON_NOTE])


def _needs_note(ctx: _Context, reason: np.ndarray) -> np.ndarray:
    return ((reason >= 0) & ctx.reason_requires_note[np.maximum(reason, 0)]).astype(np.int64)


def _history_columns(p: _Plan, ctx: _Context, start: int, stop: int) -> dict[str, _Col]:
    s = slice(start, stop)
    reason = p.hist_reason[s]
    by = p.hist_by[s]
    return {
        "id": _Col("int", p.first_change_id + np.arange(start, stop, dtype=np.int64)),
        "lead_id": _Col("int", p.ids[p.hist_lead[s]]),
        "from_stage": _cat(p.hist_from[s], _STAGE_LABELS),
        "to_stage": _cat(p.hist_to[s], _STAGE_LABELS),
        "at": _Col("ts", p.hist_at[s]),
        "by_id": _Col("fk", by),
        "by_system": _cat((by < 0).astype(np.int64), _BY_SYSTEM_LABELS),
        "reason_id": _Col("fk", np.where(reason >= 0, ctx.reason_ids[reason], -1)),
        "note": _cat(_needs_note(ctx, reason), _NOTE_LABELS),
        "deal_value": _Col("dec", p.hist_deal[s]),
    }


def _assignment_columns(p: _Plan, ctx: _Context) -> dict[str, _Col]:
    """One assignment per MQL, by the rule the lead matched. Recycling took the lead from its
    rep, and only a lead without an owner is routed: there is never a previous owner."""
    routed = p.hist_to == MQL
    lead = p.hist_lead[routed]
    rule = p.rule[lead]
    return {
        "id": _Col("int", p.first_assignment_id + np.arange(len(lead), dtype=np.int64)),
        "lead_id": _Col("int", p.ids[lead]),
        "rep_id": _Col("fk", ctx.rep_ids[p.rep[lead]]),
        "rule_id": _Col("fk", ctx.rule_ids[rule]),
        "rule_name": _cat(rule, _Labels(ctx.rule_names)),
        "by_system": _cat(np.ones(len(lead), dtype=np.int64), _BY_SYSTEM_LABELS),
        "at": _Col("ts", p.hist_at[routed]),
    }


# --- events of the rows --------------------------------------------------------------------------

_EVENT_TYPES = list(EventType.values)
_EVENT_TYPE_LABELS = _Labels(_EVENT_TYPES)
# per stage code: the code of its specific move event, -1 when lead.stage_changed says it all
_MOVE_EVENT_CODES = np.array(
    [
        _EVENT_TYPES.index(_MOVE_EVENTS[code]) if code in _MOVE_EVENTS else -1
        for code in range(len(_STAGES))
    ]
)
_NONE_LABELS = _Labels([None])
_EMPTY_LABELS = _Labels([""])
_BOOL_LABELS = _Labels([False, True])


def _event_columns(
    *,
    type: str | np.ndarray,
    lead_id: np.ndarray,
    at: np.ndarray,
    actor: np.ndarray | None,
    payload: dict[str, _Col],
    recorded: _Labels,
) -> dict[str, _Col]:
    """LeadEvent rows: `type` is one type or type codes (into _EVENT_TYPES); the actor is a
    person (fk, -1 for none), else the seed is the system that acted. Recorded by this run, at
    the one instant in `recorded`."""
    rows = len(lead_id)
    if isinstance(type, str):
        type = np.full(rows, _EVENT_TYPES.index(type), dtype=np.int64)
    if actor is None:
        actor = np.full(rows, -1, dtype=np.int64)
    return {
        "lead_id": _Col("int", lead_id),
        "type": _cat(type, _EVENT_TYPE_LABELS),
        "occurred_at": _Col("ts", at),
        "recorded_at": _cat(np.zeros(rows, dtype=np.int64), recorded),
        "actor_id": _Col("fk", actor),
        "system": _cat((actor < 0).astype(np.int64), _BY_SYSTEM_LABELS),
        "payload": _Col("json", payload),
    }


def _lead_events(p: _Plan, start: int, stop: int) -> dict[str, _Col]:
    s = slice(start, stop)
    return _event_columns(
        type=EventType.LEAD_CREATED,
        lead_id=p.ids[s],
        at=p.created[s],
        actor=None,
        payload={
            "email": _Col("text", p.emails[start:stop]),
            "external_id": _cat(np.zeros(stop - start, dtype=np.int64), _NONE_LABELS),
        },
        recorded=p.recorded_at,
    )


def _history_events(p: _Plan, ctx: _Context, start: int, stop: int) -> dict[str, _Col]:
    """lead.stage_changed for every move of the chunk, then the specific event of each move that
    has one, with the same payload (a lead's two events of one move keep that order by id)."""
    specific = _MOVE_EVENT_CODES[p.hist_to[start:stop]]
    extra = np.flatnonzero(specific >= 0)
    i = start + np.concatenate([np.arange(stop - start), extra])
    reason = p.hist_reason[i]
    return _event_columns(
        type=np.concatenate(
            [
                np.full(stop - start, _EVENT_TYPES.index(EventType.LEAD_STAGE_CHANGED)),
                specific[extra],
            ]
        ),
        lead_id=p.ids[p.hist_lead[i]],
        at=p.hist_at[i],
        actor=p.hist_by[i],
        payload={
            "from": _cat(p.hist_from[i], _STAGE_LABELS),
            "to": _cat(p.hist_to[i], _STAGE_LABELS),
            "stage_change_id": _Col("int", p.first_change_id + i),
            "reason": _cat(reason + 1, ctx.reason_codes),
            "note": _cat(_needs_note(ctx, reason), _NOTE_LABELS),
            "deal_value": _Col("dec", p.hist_deal[i]),
        },
        recorded=p.recorded_at,
    )


def _assignment_events(p: _Plan, cols: dict[str, _Col]) -> dict[str, _Col]:
    rows = len(cols["id"].data)
    nothing = np.zeros(rows, dtype=np.int64)
    return _event_columns(
        type=EventType.LEAD_ASSIGNED,
        lead_id=cols["lead_id"].data,
        at=cols["at"].data,
        actor=None,
        payload={
            "owner_id": cols["rep_id"],
            "previous_owner_id": _cat(nothing, _NONE_LABELS),
            "assignment_id": cols["id"],
            "rule_id": cols["rule_id"],
            "rule": cols["rule_name"],
            "note": _cat(nothing, _EMPTY_LABELS),
        },
        recorded=p.recorded_at,
    )


def _lead_payloads(sink: "_Sink", p: _Plan, ctx: _Context) -> Iterator["_Payload"]:
    for start in range(0, p.n, _LEAD_CHUNK):
        stop = min(p.n, start + _LEAD_CHUNK)
        yield sink.prepare(Lead, _lead_columns(p, ctx, start, stop))
        yield sink.prepare(LeadEvent, _lead_events(p, start, stop))


def _history_payloads(sink: "_Sink", p: _Plan, ctx: _Context) -> Iterator["_Payload"]:
    changes = len(p.hist_lead)
    for start in range(0, changes, _HISTORY_CHUNK):
        stop = min(changes, start + _HISTORY_CHUNK)
        yield sink.prepare(StageChange, _history_columns(p, ctx, start, stop))
        yield sink.prepare(LeadEvent, _history_events(p, ctx, start, stop))


def _touchpoint_payloads(sink: "_Sink", p: _Plan, ctx: _Context) -> Iterator["_Payload"]:
    for number, start in enumerate(range(0, p.n, _TOUCH_CHUNK_LEADS)):
        touchpoints, events = _touchpoint_columns(p, ctx, start, number)
        yield sink.prepare(Touchpoint, touchpoints)
        yield sink.prepare(LeadEvent, events)


def _update_pools(p: _Plan, ctx: _Context) -> None:
    """Keep the routing counters true to the assignments just written (stride scheduling)."""
    lead = p.hist_lead[p.hist_to == MQL]
    for r, spec in enumerate(_RULES):
        counts = np.bincount(p.rep[lead[p.rule[lead] == r]], minlength=len(REP_USERNAMES))
        clock = None
        for username, weight in spec.members.items():
            n = int(counts[REP_USERNAMES.index(username)])
            if not n:
                continue
            PoolMember.objects.filter(
                rule_id=ctx.rule_ids[r], rep=ctx.users[username], weight__gt=0
            ).update(
                assigned_count=F("assigned_count") + n,
                pass_value=F("pass_value") + Value(float(n)) / F("weight"),
            )
            clock = max(clock or 0.0, (n - 1) / weight)
        if clock is not None:
            AssignmentRule.objects.filter(pk=ctx.rule_ids[r]).update(
                virtual_time=F("virtual_time") + clock
            )


def _touchpoint_columns(
    p: _Plan, ctx: _Context, start: int, number: int
) -> tuple[dict[str, _Col], dict[str, _Col]]:
    """Touchpoints of leads start..start+_TOUCH_CHUNK_LEADS, with their own random stream, and
    their touchpoint.recorded events."""
    rng = np.random.default_rng([p.seed, 2, number])
    stop = min(p.n, start + _TOUCH_CHUNK_LEADS)
    leads = np.arange(start, stop)

    # marketing: inside the lead's marketing window
    m0, m1 = p.marketing_offset[start], p.marketing_offset[stop]
    m_lead = np.repeat(leads, p.n_marketing[start:stop])
    m_kind = p.marketing_kind[m0:m1].astype(np.int64)
    m_meta = p.marketing_meta[m0:m1].astype(np.int64)
    begin = p.created[m_lead]
    m_at = begin + (rng.random(len(m_lead)) * (p.marketing_end[m_lead] - begin)).astype(np.int64)
    m_campaign = _touch_campaigns(rng, m_kind, m_at, p.campaign[m_lead], ctx)
    m_by = np.full(len(m_lead), -1, dtype=np.int64)

    # sales: the first touch at the stamped time, the rest until the lead left sales (or now)
    s_lead = np.repeat(leads, p.n_sales[start:stop])
    first = np.r_[True, s_lead[1:] != s_lead[:-1]] if len(s_lead) else np.zeros(0, dtype=bool)
    begin, end = p.touch_at[s_lead], p.sales_end[s_lead]
    s_at = np.where(
        first, begin, begin + (rng.random(len(s_lead)) * (end - begin)).astype(np.int64)
    )
    first_kind = _choice(rng, [share for _, share in _FIRST_TOUCH_SPLIT], len(s_lead))
    later_kind = _choice(rng, [share for _, share in _SALES_KINDS], len(s_lead))
    s_kind = np.where(
        first,
        np.array([_TOUCH_KINDS.index(k) for k, _ in _FIRST_TOUCH_SPLIT])[first_kind],
        np.array([_TOUCH_KINDS.index(k) for k, _ in _SALES_KINDS])[later_kind],
    )
    s_meta = _metadata_codes(rng, _TOUCH_KINDS, s_kind).astype(np.int64)
    s_by = ctx.rep_ids[p.rep[s_lead]]

    lead = np.concatenate([m_lead, s_lead])
    at = np.concatenate([m_at, s_at])
    order = np.lexsort((at, lead))
    lead, at = lead[order], at[order]
    kind = np.concatenate([m_kind, s_kind])[order]
    meta = np.concatenate([m_meta, s_meta])[order]
    campaign = np.concatenate([m_campaign, np.full(len(s_lead), -1)])[order]
    by = np.concatenate([m_by, s_by])[order]
    if p.line is not None:
        # the first sales touch stays: it is the lead's speed-to-lead
        droppable = ~np.concatenate([np.zeros(len(m_lead), dtype=bool), first])[order]
        variant = p.line.variant(kind, meta, campaign)
        keep = _keep_below_mql(p.line, p.stage, lead, at, variant, droppable)
        if keep is not None:
            lead, at, kind, meta, campaign, by = (
                x[keep] for x in (lead, at, kind, meta, campaign, by)
            )
    # the chunk's ids follow its leads' share of the reserved range
    ids = p.first_touchpoint_id + p.touch_offset[start] + np.arange(len(lead), dtype=np.int64)
    campaign_id = _Col("fk", np.where(campaign >= 0, ctx.campaign_ids[campaign], -1))
    kinds = _cat(kind, _KIND_LABELS)
    touchpoints = {
        "id": _Col("int", ids),
        "lead_id": _Col("int", p.ids[lead]),
        "kind": kinds,
        "occurred_at": _Col("ts", at),
        "campaign_id": campaign_id,
        "metadata": _cat(meta, _META_LABELS),
        "created_by_id": _Col("fk", by),
        "created_at": _Col("ts", at),
    }
    events = _event_columns(
        type=EventType.TOUCHPOINT_RECORDED,
        lead_id=touchpoints["lead_id"].data,
        at=at,
        actor=by,
        payload={
            "touchpoint_id": touchpoints["id"],
            "kind": kinds,
            "campaign_id": campaign_id,
            "sales": _cat(_SALES_KIND[kind], _BOOL_LABELS),
        },
        recorded=p.recorded_at,
    )
    return touchpoints, events


def _touch_campaigns(rng, kinds, at, lead_campaign, ctx: _Context) -> np.ndarray:
    """Attribute a touch to a running campaign of a fitting channel; the lead's own is likelier."""
    compatible = np.array(
        [
            [channel in _KIND_CHANNELS.get(kind, ()) for channel in ctx.campaign_channel]
            for kind in _TOUCH_KINDS
        ]
    )
    running = (at[:, None] >= ctx.campaign_start) & (at[:, None] <= ctx.campaign_end)
    weights = (running & compatible[kinds]) * ctx.campaign_weight
    own = np.flatnonzero(lead_campaign >= 0)
    weights[own, lead_campaign[own]] *= 6
    picked = _pick_weighted(rng, weights)
    picked[rng.random(len(kinds)) >= 0.6] = -1
    return picked


# --- writing -------------------------------------------------------------------------------------


def _q(text: str) -> str:
    # quoted, so that an empty text stays an empty text and does not become NULL
    return '"' + text.replace('"', '""') + '"'


def _csv_literal(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict | list):
        return _q(json.dumps(value))
    return _q(str(value))


@dataclass
class _Payload:
    model: type[models.Model]
    rows: int
    columns: list[str] = field(default_factory=list)
    csv: str = ""
    objects: list[models.Model] = field(default_factory=list)


class _Sink:
    """Writes chunks of columns: COPY on PostgreSQL, bulk_create elsewhere.

    `prepare` is pure (it may run in a worker thread); `write` uses the connection."""

    def __init__(self, *, now: datetime):
        self.now = now
        self.now64 = np.datetime64(now.astimezone(UTC).replace(tzinfo=None), "s")
        self.postgres = connection.vendor == "postgresql"
        # seconds spent in the database per table
        self.seconds: Counter = Counter()
        # the last times formatted (prepare runs in one thread at a time)
        self._last_times: tuple[np.ndarray, list[str]] | None = None

    def prepare(self, model: type[models.Model], cols: dict[str, _Col]) -> _Payload:
        rows = len(next(iter(cols.values())).data)
        if self.postgres:
            names, values = [], []
            for f in model._meta.concrete_fields:
                if f.attname in cols:
                    values.append(self._csv_strings(cols[f.attname]))
                elif f.primary_key:
                    continue
                else:
                    values.append([self._csv_default(f)] * rows)
                names.append(f.column)
            text = "\n".join(map(",".join, zip(*values, strict=True)))
            return _Payload(model, rows, columns=names, csv=text + "\n" if rows else "")
        names = list(cols)
        values = [self._python_values(cols[name]) for name in names]
        objects = [model(**dict(zip(names, row, strict=True))) for row in zip(*values, strict=True)]
        return _Payload(model, rows, objects=objects)

    def write(self, payload: _Payload) -> None:
        if not payload.rows:
            return
        started = time.perf_counter()
        try:
            self._write(payload)
        finally:
            self.seconds[payload.model._meta.db_table] += time.perf_counter() - started

    def _write(self, payload: _Payload) -> None:
        if not self.postgres:
            payload.model.objects.bulk_create(payload.objects)
            return
        qn = connection.ops.quote_name
        sql = "COPY {} ({}) FROM STDIN WITH (FORMAT csv)".format(
            qn(payload.model._meta.db_table), ", ".join(qn(c) for c in payload.columns)
        )
        with connection.cursor() as cursor:
            raw = cursor.cursor
            if hasattr(raw, "copy_expert"):  # psycopg2
                raw.copy_expert(sql, io.StringIO(payload.csv), size=1 << 20)
            else:  # psycopg 3
                with raw.copy(sql) as copy:
                    copy.write(payload.csv)

    def _csv_default(self, f: models.Field) -> str:
        if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
            return self.now.isoformat()
        value = f.get_default()
        if value is None:
            return ""
        if isinstance(f, models.JSONField):
            return _q(json.dumps(value))
        return _csv_literal(value)

    def _csv_strings(self, col: _Col) -> list[str]:
        data = col.data
        if col.kind == "int":
            return list(map(str, data.tolist()))
        if col.kind == "fk":
            distinct, inverse = np.unique(data, return_inverse=True)
            labels = np.array(["" if v < 0 else str(v) for v in distinct.tolist()], dtype=object)
            return labels[inverse].tolist()
        if col.kind == "cat":
            return col.labels.csv()[data].tolist()
        if col.kind == "text":
            return [_q(v) for v in data]
        if col.kind == "ts":
            # a touchpoint's time is its occurred_at, its created_at and its event's occurred_at
            last = self._last_times
            if last is not None and last[0] is data:
                return last[1]
            null = data == _NULL
            moments = self.now64 + np.where(null, 0, data).astype("timedelta64[s]")
            out = np.datetime_as_string(moments, unit="s", timezone="UTC").astype(object)
            out[null] = ""
            self._last_times = (data, out.tolist())
            return self._last_times[1]
        if col.kind == "dec":
            out = np.full(len(data), "", dtype=object)
            known = ~np.isnan(data)
            out[known] = [f"{v:.2f}" for v in data[known].tolist()]
            return out.tolist()
        if col.kind == "json":
            # one format per chunk instead of json.dumps per row: a quarter of the time
            row = '"{' + ",".join(f'""{key}"":%s' for key in data) + '}"'
            values = [self._json_literals(c) for c in data.values()]
            return [row % literals for literals in zip(*values, strict=True)]
        raise ValueError(f"unknown column kind {col.kind}")

    @staticmethod
    def _json_literals(col: _Col) -> list[str]:
        """A payload value per row as JSON text, its quotes doubled (inside a quoted CSV field)."""
        data = col.data
        if col.kind == "int":
            return list(map(str, data.tolist()))
        if col.kind == "fk":
            distinct, inverse = np.unique(data, return_inverse=True)
            labels = np.array(
                ["null" if v < 0 else str(v) for v in distinct.tolist()], dtype=object
            )
            return labels[inverse].tolist()
        if col.kind == "cat":
            return col.labels.json_csv()[data].tolist()
        if col.kind == "text":
            return [json.dumps(v).replace('"', '""') for v in data]
        if col.kind == "dec":
            # as the event writer keeps a Decimal: its text, two places
            out = np.full(len(data), "null", dtype=object)
            known = ~np.isnan(data)
            out[known] = [f'""{v:.2f}""' for v in data[known].tolist()]
            return out.tolist()
        raise ValueError(f"a payload cannot hold a column of kind {col.kind}")

    def _python_values(self, col: _Col) -> list[Any]:
        data = col.data
        if col.kind == "int":
            return data.tolist()
        if col.kind == "fk":
            return [None if v < 0 else v for v in data.tolist()]
        if col.kind == "cat":
            return col.labels.python()[data].tolist()
        if col.kind == "text":
            return list(data)
        if col.kind == "ts":
            return [None if v == _NULL else self.now + timedelta(seconds=v) for v in data.tolist()]
        if col.kind == "dec":
            return [None if v != v else Decimal(f"{v:.2f}") for v in data.tolist()]
        if col.kind == "json":
            keys = list(data)
            values = [
                [None if v is None else str(v) for v in self._python_values(c)]
                if c.kind == "dec"
                else self._python_values(c)
                for c in data.values()
            ]
            return [dict(zip(keys, row, strict=True)) for row in zip(*values, strict=True)]
        raise ValueError(f"unknown column kind {col.kind}")


_DONE = object()


def _ahead(items: Iterator[Any]) -> Iterator[Any]:
    """Prepare the next chunk in a thread while the database takes the current one."""
    iterator = iter(items)
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(next, iterator, _DONE)
        while True:
            item = pending.result()
            if item is _DONE:
                return
            pending = pool.submit(next, iterator, _DONE)
            yield item


def _reserve_ids(model: type[models.Model], n: int) -> int:
    """The first of n consecutive primary keys nobody else will use; the rows are written with them."""
    table = model._meta.db_table
    column = model._meta.pk.column
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            cursor.execute(f"SELECT MAX({qn(column)}) FROM {qn(table)}")
            first = (cursor.fetchone()[0] or 0) + 1
        else:
            # writers wait until we commit; readers carry on
            cursor.execute(f"LOCK TABLE {qn(table)} IN SHARE ROW EXCLUSIVE MODE")
            cursor.execute("SELECT pg_get_serial_sequence(%s, %s)", [table, column])
            sequence = cursor.fetchone()[0]
            cursor.execute(
                f"SELECT GREATEST(nextval(%s), (SELECT COALESCE(MAX({qn(column)}), 0) + 1 "
                f"FROM {qn(table)}))",
                [sequence],
            )
            first = cursor.fetchone()[0]
            if n:
                cursor.execute("SELECT setval(%s, %s)", [sequence, first + n - 1])
    return first


class _BulkLoad:
    """For big PostgreSQL loads: foreign keys off and on again (one validating join instead of
    a trigger per row), secondary indexes and unique constraints of empty tables built once at
    the end (one sort instead of a million random inserts; the seed's e-mails are unique by
    construction, and re-adding the constraint checks it)."""

    # the tables the seed fills (LeadEvent has no foreign keys: a log outlives what it names)
    tables = (Lead, StageChange, Assignment, Touchpoint, LeadEvent)
    index_tables = (Lead, StageChange, Touchpoint, LeadEvent)

    def __init__(self, *, enabled: bool, rebuild_indexes: bool = True):
        self.enabled = enabled
        self.rebuild_indexes = rebuild_indexes
        self.foreign_keys: list[tuple[str, str, str]] = []
        self.indexes: list[str] = []
        self.unique: list[tuple[str, str, str]] = []

    def begin(self) -> None:
        if not self.enabled:
            return
        names = [m._meta.db_table for m in self.tables]
        with connection.cursor() as cursor:
            # checks queued by this transaction (users, campaigns) must run before ALTER TABLE
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute(
                "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
                "FROM pg_constraint WHERE contype = 'f' AND conrelid::regclass::text = ANY(%s) "
                "ORDER BY 1, 2",
                [names],
            )
            self.foreign_keys = cursor.fetchall()
            for table, name, _ in self.foreign_keys:
                cursor.execute(f'ALTER TABLE "{table}" DROP CONSTRAINT "{name}"')
            for model in self.index_tables if self.rebuild_indexes else ():
                table = model._meta.db_table
                cursor.execute(f'SELECT EXISTS (SELECT 1 FROM "{table}")')
                if cursor.fetchone()[0]:
                    continue
                cursor.execute(
                    "SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) "
                    "FROM pg_index WHERE indrelid = %s::regclass "
                    "AND NOT indisprimary AND NOT indisunique ORDER BY 1",
                    [table],
                )
                for name, definition in cursor.fetchall():
                    cursor.execute(f"DROP INDEX {name}")
                    self.indexes.append(definition)
                # unique constraints no foreign key relies on
                cursor.execute(
                    "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
                    "FROM pg_constraint c WHERE contype = 'u' AND conrelid = %s::regclass "
                    "AND NOT EXISTS (SELECT 1 FROM pg_constraint f WHERE f.contype = 'f' "
                    "AND f.conindid = c.conindid) ORDER BY 2",
                    [table],
                )
                for unique in cursor.fetchall():
                    cursor.execute(f'ALTER TABLE "{unique[0]}" DROP CONSTRAINT "{unique[1]}"')
                    self.unique.append(unique)
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")

    def end(self, *, except_leads: bool = False) -> None:
        """Build what begin() dropped; `except_leads` leaves the lead table's own indexes and
        constraints for a second call (the seed scores its leads in between)."""
        if not self.enabled:
            return
        lead_table = Lead._meta.db_table

        def on_leads(definition: str) -> bool:
            return re.search(rf' ON (?:\S+\.)?"?{lead_table}"? ', definition) is not None

        indexes = [d for d in self.indexes if not (except_leads and on_leads(d))]
        constraints = [
            c
            for c in (*self.unique, *self.foreign_keys)
            if not (except_leads and c[0] == lead_table)
        ]
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
            for definition in indexes:
                cursor.execute(definition)
            for table, name, definition in constraints:
                cursor.execute(f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {definition}')
        self.indexes = [d for d in self.indexes if d not in indexes]
        self.unique = [c for c in self.unique if c not in constraints]
        self.foreign_keys = [c for c in self.foreign_keys if c not in constraints]


def _score(summary: DemoSummary) -> None:
    """The seed writes rows directly, bypassing the real-time scoring: score them in one run.
    Like any rescore this moves no stage: the seeded history stays as generated."""
    try:
        run = scoring_run_create(kind=RunKind.MANUAL)
    except DomainError as error:  # no active scoring model: nothing to score with
        summary.unscored = error.message
        return
    run = scoring_run_execute(run_id=run.pk)
    if run is not None:
        summary.scored = run.processed
        summary.scored_with = str(run.model)


def _analyze(tables: tuple[type[models.Model], ...]) -> None:
    """Fresh planner statistics for the filled tables before anyone queries them (the scoring run
    right after the seed, the first list page): autovacuum may lag behind, or be off."""
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE " + ", ".join(f'"{m._meta.db_table}"' for m in tables))
