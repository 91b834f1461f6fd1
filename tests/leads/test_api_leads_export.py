"""GET /api/v1/leads/export/ (the list's filters as streamed CSV) and alignment.lib.csv_safe."""

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from alignment.lib.csv_safe import csv_cell, csv_lines
from leads.api import export
from leads.api.export import EXPORT_COLUMNS
from leads.models import Lead, Stage
from tests.factories import CampaignFactory, LeadFactory, SourceFactory
from tests.leads.test_api_leads import assert_problem, client_with, reader

pytestmark = pytest.mark.django_db

EXPORT = "/api/v1/leads/export/"
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def rows_of(response) -> list[dict]:
    assert response.status_code == 200, response
    assert response.streaming
    text = b"".join(response.streaming_content).decode("utf-8")
    return list(csv.DictReader(io.StringIO(text)))


# --- csv_safe ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ('=HYPERLINK("http://evil")', '\'=HYPERLINK("http://evil")'),
        ("+49 30 1234", "'+49 30 1234"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("Jane", "Jane"),
        ("a=b", "a=b"),
        ("", ""),
        (None, ""),
        (-3, -3),
        (2.5, 2.5),
        (Decimal("-10.50"), Decimal("-10.50")),
        (True, "true"),
        (T0, "2026-11-02T09:00:00+00:00"),
    ],
)
def test_a_cell_is_neutralised_only_when_it_is_text_starting_a_formula(value, cell):
    assert csv_cell(value) == cell


def test_lines_are_csv_with_quoting_and_neutralised_cells():
    lines = list(csv_lines(["a", "b"], [["=1+1", 'say "hi", then go'], [None, -1]]))

    assert lines == ["a,b\r\n", '\'=1+1,"say ""hi"", then go"\r\n', ",-1\r\n"]


# --- the endpoint -----------------------------------------------------------------------------


def test_the_export_is_an_attachment_of_every_lead_in_the_lists_order(rep):
    source, campaign = SourceFactory(name="Google", key="google"), CampaignFactory(name="Spring")
    a = LeadFactory(owner=rep, source=source, campaign=campaign, attributes={"tier": "gold"})
    b = LeadFactory()
    Lead.objects.filter(pk=a.pk).update(updated_at=T0 + timedelta(hours=1))
    Lead.objects.filter(pk=b.pk).update(updated_at=T0)

    response = reader().get(EXPORT)

    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="leads-')
    rows = rows_of(response)
    assert list(rows[0]) == [header for header, _ in EXPORT_COLUMNS]
    assert [int(r["id"]) for r in rows] == [a.pk, b.pk]
    first = rows[0]
    assert first["email"] == a.email and first["source"] == "google"
    assert first["campaign"] == "Spring" and first["campaign_id"] == str(campaign.pk)
    assert first["owner"] == "rep" and first["owner_id"] == str(rep.pk)
    assert first["updated_at"] == "2026-11-02T10:00:00+00:00"
    assert first["attributes"] == '{"tier": "gold"}'
    assert rows[1]["owner"] == "" and rows[1]["attributes"] == ""


def test_the_export_takes_the_lists_filters_and_ordering(rep):
    low = LeadFactory(stage=Stage.MQL, score=10, owner=rep)
    high = LeadFactory(stage=Stage.MQL, score=90, owner=rep)
    LeadFactory(stage=Stage.NEW, score=50)

    response = reader().get(EXPORT, {"stage": "mql", "owner": rep.pk, "ordering": "-score"})

    assert [int(r["id"]) for r in rows_of(response)] == [high.pk, low.pk]


def test_formula_cells_are_neutralised_in_the_file():
    LeadFactory(
        first_name='=HYPERLINK("http://evil.example","click")',
        last_name="+1+1",
        company="-cmd|' /C calc'!A0",
        title="@SUM(1)",
        phone="\t=1",
        industry="\r=2",
        country="DE",
    )

    [row] = rows_of(reader().get(EXPORT))

    assert row["first_name"] == '\'=HYPERLINK("http://evil.example","click")'
    assert row["last_name"] == "'+1+1"
    assert row["company"] == "'-cmd|' /C calc'!A0"
    assert row["title"] == "'@SUM(1)"
    assert row["phone"] == "'\t=1"
    assert row["industry"] == "'\r=2"
    assert row["country"] == "DE"


def test_asking_for_csv_gets_csv_and_a_bad_filter_still_gets_problem_json():
    LeadFactory()
    api = reader()

    assert len(rows_of(api.get(EXPORT, HTTP_ACCEPT="text/csv"))) == 1
    problem = assert_problem(
        api.get(EXPORT, {"updated_since": "2026-11-02"}, HTTP_ACCEPT="text/csv"), 400
    )
    assert "updated_since" in problem["errors"]
    assert_problem(api.get(EXPORT, {"ordering": "email"}), 400)


def test_exporting_needs_the_scope_and_a_team_role(outsider):
    LeadFactory(email="secret@x.example")

    response = client_with("events:read").get(EXPORT, HTTP_ACCEPT="text/csv")
    problem = assert_problem(response, 403)
    assert "leads:read" in problem["detail"] and b"secret" not in response.content
    assert_problem(reader(as_user=outsider).get(EXPORT), 403)


@pytest.mark.parametrize("count", [2, 25])
def test_the_export_costs_the_same_queries_however_many_leads(
    rep, count, django_assert_num_queries
):
    LeadFactory.create_batch(count, owner=rep, source=SourceFactory(), campaign=CampaignFactory())
    api = reader()
    api.get(EXPORT)  # the key's last-used time is written once a minute

    # the key; then the rows, read in one transaction (a savepoint inside the test's)
    with django_assert_num_queries(4):
        rows = rows_of(api.get(EXPORT))
    assert len(rows) == count


def test_a_format_parameter_does_not_change_the_file():
    LeadFactory()
    assert len(rows_of(reader().get(EXPORT, {"format": "json"}))) == 1


def test_the_file_is_sent_in_pieces_that_together_are_the_whole(monkeypatch):
    monkeypatch.setattr(export, "CHUNK_BYTES", 500)
    monkeypatch.setattr(export, "CHUNK_SIZE", 3)
    leads = LeadFactory.create_batch(12)

    response = reader().get(EXPORT, {"ordering": "id"})
    pieces = list(response.streaming_content)

    assert len(pieces) > 3
    rows = list(csv.DictReader(io.StringIO(b"".join(pieces).decode())))
    assert [int(r["id"]) for r in rows] == [lead.pk for lead in leads]
