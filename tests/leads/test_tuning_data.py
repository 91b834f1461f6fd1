"""What fine-tuning reads, in its compact form: the touchpoints of the labeled leads as arrays
(read by batches of leads, streamed), handed to the evaluation as lists of tuples per lead, and
the decayed counts computed from the arrays. SQLite and PostgreSQL."""

import datetime as dt

import numpy as np
import pytest
from django.utils import timezone

from leads.models import Lead, Stage, Touchpoint
from leads.scoring.rules import compile_spec, validate_spec
from leads.scoring.tuning import data, evaluate
from leads.scoring.tuning import touches as touches_module
from leads.scoring.tuning.data import labeled_leads
from leads.scoring.tuning.touches import Touchpoints, decayed_counts, touchpoints
from tests.factories import CampaignFactory, LeadFactory, TouchpointFactory

pytestmark = pytest.mark.django_db

KINDS = ["web_visit", "email_open", "demo_request", "webinar_attended"]
HALF_LIFE_DAYS = 30.0


@pytest.fixture
def decided_leads():
    """Five lost or won leads with touchpoints of several kinds, campaigns and metadata, two at
    the same instant (ordered by id), one lead without any, and one lead that is not labeled."""
    now = timezone.now().replace(microsecond=123456)
    campaign = CampaignFactory()
    leads = [
        LeadFactory(
            stage=Stage.WON if n % 2 else Stage.LOST,
            stage_changed_at=now - dt.timedelta(days=2),
            won_at=now - dt.timedelta(days=2) if n % 2 else None,
            lost_at=None if n % 2 else now - dt.timedelta(days=2),
        )
        for n in range(5)
    ]
    other = LeadFactory()
    plan = {
        0: [("web_visit", 40, None, {}), ("demo_request", 3, campaign, {"track": "pricing"})],
        1: [("email_open", 10, campaign, {}), ("email_open", 10, None, {"n": 1})],
        2: [],
        3: [
            ("webinar_attended", 80, campaign, {"track": "intro"}),
            ("web_visit", 2.5, None, {}),
            ("call", 5, None, {}),  # a sales kind, not asked for
            ("web_visit", 1, None, {}),  # after the cutoff (2 days ago)
            ("web_visit", -1, None, {}),  # in the future
        ],
        4: [("web_visit", 12.5, None, {}) for _ in range(3)],
    }
    for n, touches in plan.items():
        for kind, days_ago, camp, metadata in touches:
            TouchpointFactory(
                lead=leads[n],
                kind=kind,
                campaign=camp,
                metadata=metadata,
                occurred_at=now - dt.timedelta(days=days_ago, microseconds=n),
            )
    TouchpointFactory(lead=other, kind="web_visit", occurred_at=now - dt.timedelta(days=1))
    return leads, now


def plain(lead_ids, kinds, *, with_metadata: bool) -> dict[int, list]:
    """The same touchpoints by one plain query per lead, as the tuples the evaluation reads."""
    out = {}
    for i, lead_id in enumerate(lead_ids):
        rows = [
            (kind, campaign_id, metadata if with_metadata else {}, at)
            for kind, campaign_id, metadata, at in Touchpoint.objects.filter(
                lead_id=lead_id, kind__in=kinds
            )
            .order_by("occurred_at", "id")
            .values_list("kind", "campaign_id", "metadata", "occurred_at")
        ]
        if rows:
            out[i] = rows
    return out


def straightforward_counts(touches: dict, cutoffs, kinds) -> np.ndarray:
    out = np.zeros((len(cutoffs), len(kinds)))
    for i, items in touches.items():
        for kind, _campaign, _metadata, at in items:
            if kind in kinds and at <= cutoffs[i]:
                age = (cutoffs[i] - at).total_seconds()
                out[i, kinds.index(kind)] += 0.5 ** (age / (HALF_LIFE_DAYS * 86400))
    return out


@pytest.mark.parametrize("with_metadata", [True, False])
def test_compact_touchpoints_give_the_tuples_of_a_plain_query_in_time_order(
    decided_leads, with_metadata
):
    labeled = labeled_leads(data.OUTCOME_WON)
    assert len(labeled) == 5
    touches = touchpoints(
        data.labeled_queryset(data.OUTCOME_WON),
        labeled.ids,
        kinds=KINDS,
        with_metadata=with_metadata,
    )
    expected = plain(labeled.ids.tolist(), KINDS, with_metadata=with_metadata)
    assert isinstance(touches, Touchpoints)
    assert list(touches.items()) == list(expected.items())
    assert list(touches) == [0, 1, 3, 4] and len(touches) == 4
    assert touches.get(2) is None and 2 not in touches and 3 in touches
    assert touches.get(len(labeled)) is None and touches.get("x") is None
    assert touches[1] == expected[1]
    # the two touchpoints at the same instant come in id order
    assert [t[2] for t in touches[1]] == ([{}, {"n": 1}] if with_metadata else [{}, {}])
    assert all(isinstance(t[3], dt.datetime) and t[3].tzinfo is not None for t in touches[0])
    # what the evaluation asks for: up to a moment, only some kinds
    cut = labeled.cutoff[3]
    assert touches.until(3, cut) == [t for t in expected[3] if t[3] <= cut]
    assert touches.until(3, cut, kinds={"web_visit"}) == [
        t for t in expected[3] if t[3] <= cut and t[0] == "web_visit"
    ]
    assert touches.until(2, cut) == []


def test_batches_of_two_leads_read_in_chunks_of_two_rows_give_the_same_result(
    decided_leads, monkeypatch
):
    labeled = labeled_leads(data.OUTCOME_WON)
    qs = data.labeled_queryset(data.OUTCOME_WON)
    whole = touchpoints(qs, labeled.ids, kinds=KINDS, with_metadata=True)
    counts = decayed_counts(whole, labeled.cutoff, KINDS, half_life_days=HALF_LIFE_DAYS)
    monkeypatch.setattr(touches_module, "LEAD_BATCH", 2)
    monkeypatch.setattr(data, "CHUNK_ROWS", 2)
    monkeypatch.setattr(touches_module, "DECAY_BATCH", 2)
    batched = touchpoints(qs, labeled.ids, kinds=KINDS, with_metadata=True)
    assert list(batched.items()) == list(whole.items())
    assert np.array_equal(batched.offsets, whole.offsets)
    again = labeled_leads(data.OUTCOME_WON)
    assert np.array_equal(again.ids, labeled.ids) and again.leads == labeled.leads
    assert again.cutoff == labeled.cutoff
    assert np.array_equal(
        decayed_counts(batched, labeled.cutoff, KINDS, half_life_days=HALF_LIFE_DAYS), counts
    )


def test_lead_ids_out_of_id_order_keep_each_row_its_own_touchpoints(decided_leads, monkeypatch):
    monkeypatch.setattr(touches_module, "LEAD_BATCH", 2)
    leads, _now = decided_leads
    ids = np.array([leads[4].pk, leads[0].pk, leads[2].pk, leads[3].pk], dtype=np.int64)
    touches = touchpoints(Lead.objects.all(), ids, kinds=KINDS, with_metadata=True)
    assert dict(touches.items()) == plain(ids.tolist(), KINDS, with_metadata=True)


def test_decayed_counts_equal_a_per_touch_computation(decided_leads):
    labeled = labeled_leads(data.OUTCOME_WON)
    touches = touchpoints(
        data.labeled_queryset(data.OUTCOME_WON), labeled.ids, kinds=KINDS, with_metadata=False
    )
    # only some of the kinds read, in another order: a kind not asked for counts nowhere
    kinds = ["web_visit", "demo_request", "email_open"]
    counts = decayed_counts(touches, labeled.cutoff, kinds, half_life_days=HALF_LIFE_DAYS)
    expected = straightforward_counts(dict(touches.items()), labeled.cutoff, kinds)
    assert counts.shape == (5, 3)
    np.testing.assert_allclose(counts, expected, rtol=1e-12, atol=0)
    # the lead with three visits 12.5 days old, and one whose last visit is after its cutoff
    assert counts[4, 0] == pytest.approx(3 * 0.5 ** (10.5 / 30), rel=1e-6)
    assert counts[3, 0] == pytest.approx(0.5 ** (0.5 / 30), rel=1e-6)
    assert counts[2].sum() == 0
    # a plain mapping of lists is accepted too, with the same result
    plain_counts = decayed_counts(
        dict(touches.items()), labeled.cutoff, kinds, half_life_days=HALF_LIFE_DAYS
    )
    assert np.array_equal(plain_counts, counts)
    assert not decayed_counts(
        Touchpoints.empty(5), labeled.cutoff, kinds, half_life_days=HALF_LIFE_DAYS
    ).any()


def test_evaluation_scores_the_compact_form_as_the_lists_it_replaces(decided_leads):
    labeled = labeled_leads(data.OUTCOME_WON)
    touches = touchpoints(
        data.labeled_queryset(data.OUTCOME_WON), labeled.ids, kinds=KINDS, with_metadata=True
    )
    campaign_id = next(t[1] for t in touches[0] if t[1] is not None)
    spec = validate_spec(
        {
            "half_life_days": HALF_LIFE_DAYS,
            "mql_total": 50,
            "mql_fit": 0,
            "grade_a": 60,
            "grade_b": 40,
            "grade_c": 20,
            "group_caps": {"web": 15},
            "fit_rules": [],
            "engagement_rules": [
                {"kind": "web_visit", "points": 6, "group": "web"},
                {"kind": "email_open", "campaign": campaign_id, "points": 4},
                {"kind": "demo_request", "metadata": {"track": "pricing"}, "points": 30},
                {"kind": "webinar_attended", "points": 20},
            ],
        }
    )
    model = compile_spec(spec, model_id=1, name="test")
    lists = dict(touches.items())
    rows = np.arange(len(labeled))
    compact_scores = evaluate.engagement_scores(model, rows, touches, labeled.cutoff)
    assert np.array_equal(
        compact_scores, evaluate.engagement_scores(model, rows, lists, labeled.cutoff)
    )
    assert compact_scores[0] > 30 and compact_scores[2] == 0
    fit = np.full(len(labeled), 10.0)
    peaks = evaluate.peak_totals(model, fit, touches, labeled.cutoff)
    assert np.array_equal(peaks, evaluate.peak_totals(model, fit, lists, labeled.cutoff))
    assert peaks[2] == 10 and peaks[0] > 40


def test_recent_leads_beyond_the_sample_are_every_kth_id_and_know_how_many_arrived():
    now = timezone.now()
    fresh = [LeadFactory(created_at=now - dt.timedelta(days=n % 20)) for n in range(13)]
    LeadFactory(created_at=now - dt.timedelta(days=200))  # before the period: never counted
    since = now - dt.timedelta(days=90)
    whole = data.recent_leads(data.OUTCOME_WON, since=since, now=now)
    assert whole.arrived == 13 and sorted(whole.ids.tolist()) == sorted(x.pk for x in fresh)
    sampled = data.recent_leads(data.OUTCOME_WON, since=since, now=now, sample=5)
    # 13 leads, at most 5 wanted: every third id
    assert sampled.arrived == 13
    assert sampled.ids.tolist() == sorted(x.pk for x in fresh if x.pk % 3 == 0)
    assert len(sampled.leads) == len(sampled.ids) == len(sampled.was_mql) == len(sampled.cutoff)
    assert data.arrivals(since) == 13
