"""The CSV import: the service, the command, the Celery task and the upload page."""

import io
import json
import re
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from alignment.lib.errors import DomainError, PermissionDenied
from leads.importing.mapping import mapping_from_dict, mapping_loads, mapping_read
from leads.importing.services import MAX_STORED_ERRORS, leads_import
from leads.importing.tasks import import_job_run
from leads.models import ImportJob, ImportStatus, Lead, Source, Stage, StageChange
from tests.factories import CampaignFactory, LeadFactory, SourceFactory

DATA = Path(__file__).parent / "data"
REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "docs" / "examples"
BANK_CSV = Path(__file__).resolve().parents[3] / "shared/data/bank-additional-full.csv"

pytestmark = pytest.mark.django_db


def csv_file(tmp_path, text: str, name: str = "leads.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


def problems(result) -> list[tuple[int, str]]:
    return [(e.row, e.column) for e in result.errors]


# --- formats -------------------------------------------------------------------------------------


def test_comma_file_without_mapping_fills_fields_by_column_name():
    result = leads_import(file=DATA / "comma.csv", by=None)

    assert (result.created, result.bad_rows, result.delimiter) == (3, 0, ",")
    ann = Lead.objects.get(email="ann@example.com")
    assert (ann.first_name, ann.last_name, ann.company, ann.company_size, ann.country) == (
        "Ann",
        "Arbor",
        "Acme GmbH",
        120,
        "DE",
    )
    # columns without a lead field become attributes under their normalised name
    assert ann.attributes == {"favourite_colour": "blue", "zip": "01234"}
    carla = Lead.objects.get(email="carla@example.com")
    assert carla.company == "Cruz, Costa & Co"
    assert "favourite_colour" not in carla.attributes


def test_semicolon_file_with_bom_and_crlf_is_read_without_options():
    result = leads_import(file=DATA / "semicolon_bom_crlf.csv", by=None)

    assert (result.delimiter, result.encoding, result.created, result.bad_rows) == (
        ";",
        "utf-8-sig",
        2,
        0,
    )
    dora = Lead.objects.get(email="dora@example.com")
    # the BOM is not part of the first column's name, so `email` was recognised
    assert dora.company == "Dora; Partners"
    assert dora.attributes == {"score": 42, "rate": 1.5}


def test_an_explicit_delimiter_is_used_instead_of_the_sniffed_one(tmp_path):
    path = csv_file(tmp_path, "email|company\nivy@example.com|Ivy, Inc.\n")

    result = leads_import(file=path, by=None, delimiter="|")

    assert result.delimiter == "|"
    assert Lead.objects.get(email="ivy@example.com").company == "Ivy, Inc."


def test_a_quoted_value_may_hold_the_delimiter_a_quote_and_a_line_break():
    result = leads_import(file=DATA / "quoted_multiline.csv", by=None)

    gus = Lead.objects.get(email="gus@example.com")
    assert gus.company == "Gus, Inc."
    assert gus.attributes["notes"] == "first line\r\nsecond line, with a comma"
    assert Lead.objects.get(email="hana@example.com").attributes["notes"] == 'she said "call me"'
    # the row after a two-line value is row 4 of the spreadsheet, not line 5 of the file
    assert problems(result) == [(4, "email")]


def test_crlf_line_endings_do_not_end_up_in_values(tmp_path):
    path = tmp_path / "crlf.csv"
    path.write_bytes(b"email,company\r\njo@example.com,Jo Ltd\r\nkai@example.com,Kai AG\r\n")

    result = leads_import(file=path, by=None)

    assert result.created == 2
    assert Lead.objects.get(email="kai@example.com").company == "Kai AG"


def test_latin1_file_is_detected_when_no_encoding_is_given():
    result = leads_import(file=DATA / "latin1.csv", by=None)

    assert result.encoding in ("cp1252", "iso8859-1")
    franz = Lead.objects.get(email="franz@example.de")
    assert (franz.last_name, franz.company, franz.attributes["city"]) == (
        "Müller",
        "Bäckerei Groß",
        "Köln",
    )
    assert Lead.objects.get(email="zoe@example.fr").company == "Société Générale"


def test_latin1_file_is_read_with_the_given_encoding():
    result = leads_import(file=DATA / "latin1.csv", by=None, encoding="latin-1")

    assert result.encoding == "iso8859-1"
    assert Lead.objects.get(email="zoe@example.fr").first_name == "Zoé"


def test_a_wrong_encoding_is_refused_with_a_readable_message_and_nothing_written():
    with pytest.raises(
        DomainError, match="cannot be read as utf-8: byte 0xfc on line 2 is not utf-8"
    ):
        leads_import(file=DATA / "latin1.csv", by=None, encoding="utf-8")
    assert not Lead.objects.exists()


def test_an_unknown_encoding_or_delimiter_is_refused():
    with pytest.raises(DomainError, match="Unknown encoding 'utf-9'"):
        leads_import(file=DATA / "comma.csv", by=None, encoding="utf-9")
    with pytest.raises(DomainError, match="one character"):
        leads_import(file=DATA / "comma.csv", by=None, delimiter=";;")


def test_empty_file_and_duplicate_header_are_refused(tmp_path):
    with pytest.raises(DomainError, match="empty"):
        leads_import(file=csv_file(tmp_path, ""), by=None)
    with pytest.raises(DomainError, match="names column 'email' twice"):
        leads_import(file=csv_file(tmp_path, "email,email\na@example.com,b@example.com\n"), by=None)
    with pytest.raises(DomainError, match="Cannot read"):
        leads_import(file=tmp_path / "nowhere.csv", by=None)


def test_blank_rows_are_skipped_but_keep_the_row_numbers(tmp_path):
    path = csv_file(tmp_path, "email,company\n\na@example.com,A\n,\nbad,B\n")

    result = leads_import(file=path, by=None)

    assert (result.total_rows, result.created) == (2, 1)
    assert problems(result) == [(5, "email")]


# --- values --------------------------------------------------------------------------------------


def test_numbers_stay_numbers_and_codes_stay_text(tmp_path):
    path = csv_file(
        tmp_path,
        "email,count,ratio,negative,zip,phone_no,big_id,exp,words\n"
        "n@example.com,42,1.5,-3,01234,+49 30 1234,12345678901234567890,1e5,1.5 apples\n",
    )

    leads_import(file=path, by=None)

    assert Lead.objects.get().attributes == {
        "count": 42,
        "ratio": 1.5,
        "negative": -3,
        "zip": "01234",
        "phone_no": "+49 30 1234",
        "big_id": "12345678901234567890",
        "exp": "1e5",
        "words": "1.5 apples",
    }


def test_numbers_survive_the_database_round_trip_as_numbers(tmp_path):
    path = csv_file(tmp_path, "email,count,ratio\nn@example.com,42,93.994\n")

    leads_import(file=path, by=None)
    again = leads_import(file=path, by=None)

    lead = Lead.objects.get()
    assert type(lead.attributes["count"]) is int
    assert type(lead.attributes["ratio"]) is float
    assert again.unchanged == 1


def test_typed_attributes_convert_or_report_the_cell(tmp_path):
    path = csv_file(
        tmp_path,
        "email,visits,share,newsletter,code\n"
        "t1@example.com,3.0,2,yes,42\n"
        "t2@example.com,three,x,maybe,7\n",
    )
    mapping = {
        "attributes": {
            "visits": {"column": "visits", "type": "int"},
            "share": {"column": "share", "type": "float"},
            "newsletter": {"column": "newsletter", "type": "bool"},
            "code": {"column": "code", "type": "str"},
        }
    }

    result = leads_import(file=path, by=None, mapping=mapping)

    assert Lead.objects.get().attributes == {
        "visits": 3,
        "share": 2.0,
        "newsletter": True,
        "code": "42",
    }
    assert type(Lead.objects.get().attributes["share"]) is float
    assert problems(result) == [(3, "visits"), (3, "share"), (3, "newsletter")]
    assert result.bad_rows == 1
    assert "'three' is not a whole number" in str(result.errors[0])


def test_missing_tokens_leave_fields_and_attributes_empty(tmp_path):
    path = csv_file(
        tmp_path,
        "email,industry,specialization,education\n"
        "m1@example.com,Select,Select,unknown\n"
        "m2@example.com,Retail,Finance,UNKNOWN\n",
    )

    leads_import(file=path, by=None, mapping={"missing": ["unknown", "Select"]})

    m1 = Lead.objects.get(email="m1@example.com")
    assert (m1.industry, m1.attributes) == ("", {})
    m2 = Lead.objects.get(email="m2@example.com")
    assert (m2.industry, m2.attributes) == ("Retail", {"specialization": "Finance"})


def test_a_missing_value_does_not_erase_what_the_lead_has(tmp_path):
    LeadFactory(email="keep@example.com", company="Keep GmbH", attributes={"tier": "gold"})
    path = csv_file(tmp_path, "email,company,tier,first_name\nkeep@example.com,,,Kara\n")

    leads_import(file=path, by=None)

    lead = Lead.objects.get(email="keep@example.com")
    assert (lead.company, lead.attributes, lead.first_name) == (
        "Keep GmbH",
        {"tier": "gold"},
        "Kara",
    )


def test_source_names_in_any_spelling_are_one_source():
    SourceFactory(name="Google", key="google")

    result = leads_import(file=DATA / "comma.csv", by=None)

    assert Source.objects.count() == 1
    google = Source.objects.get()
    assert (google.key, google.name) == ("google", "Google")
    assert Lead.objects.filter(source=google).count() == 3
    assert result.sources_created == 0


def test_a_new_source_is_created_once_with_the_first_spelling(tmp_path):
    path = csv_file(
        tmp_path,
        "email,source\ns1@example.com,Trade Show\ns2@example.com,trade-show\ns3@example.com,TRADE SHOW\n",
    )

    result = leads_import(file=path, by=None, batch_size=1)

    assert result.sources_created == 1
    source = Source.objects.get()
    assert (source.key, source.name) == ("trade_show", "Trade Show")
    assert Lead.objects.filter(source=source).count() == 3


def test_an_import_never_overwrites_where_a_lead_came_from(tmp_path):
    linkedin = SourceFactory(name="LinkedIn", key="linkedin")
    LeadFactory(email="first@example.com", source=linkedin, utm_source="li")
    path = csv_file(
        tmp_path, "email,source,utm_source,company\nfirst@example.com,Google,g,New Co\n"
    )

    leads_import(file=path, by=None)

    lead = Lead.objects.get(email="first@example.com")
    assert (lead.source, lead.utm_source, lead.company) == (linkedin, "li", "New Co")


def test_campaign_by_name_or_utm_campaign_and_unknown_campaign_is_a_bad_row(tmp_path):
    spring = CampaignFactory(name="Spring Launch", utm_campaign="spring-24")
    path = csv_file(
        tmp_path,
        "email,campaign\nc1@example.com,spring launch\nc2@example.com,SPRING-24\nc3@example.com,Autumn\n",
    )

    result = leads_import(file=path, by=None)

    assert set(Lead.objects.values_list("email", "campaign")) == {
        ("c1@example.com", spring.pk),
        ("c2@example.com", spring.pk),
    }
    assert problems(result) == [(4, "campaign")]
    assert "no campaign is named 'Autumn'" in result.errors[0].reason


def test_utm_campaign_alone_links_the_matching_campaign(tmp_path):
    spring = CampaignFactory(utm_campaign="spring-24")
    path = csv_file(
        tmp_path, "email,utm_campaign\nu1@example.com,spring-24\nu2@example.com,other\n"
    )

    leads_import(file=path, by=None)

    assert Lead.objects.get(email="u1@example.com").campaign == spring
    u2 = Lead.objects.get(email="u2@example.com")
    assert (u2.campaign, u2.utm_campaign) == (None, "other")


def test_excluded_and_ignored_columns_are_not_imported(tmp_path):
    path = csv_file(tmp_path, "email,secret,notes,company\nx@example.com,s3cr3t,hello,X AG\n")

    leads_import(file=path, by=None, mapping={"exclude": ["secret"]})
    assert Lead.objects.get().attributes == {"notes": "hello"}

    Lead.objects.all().delete()
    leads_import(file=path, by=None, mapping={"unmapped": "ignore"})
    lead = Lead.objects.get()
    assert (lead.attributes, lead.company) == ({}, "X AG")


def test_auto_fields_off_keeps_every_unmapped_column_as_an_attribute(tmp_path):
    path = csv_file(tmp_path, "mail,campaign,country\ny@example.com,3,PT\n")
    mapping = {"auto_fields": False, "fields": {"email": "mail"}}

    leads_import(file=path, by=None, mapping=mapping)

    lead = Lead.objects.get()
    assert (lead.campaign, lead.country, lead.attributes) == (
        None,
        "",
        {"campaign": 3, "country": "PT"},
    )


# --- matching and re-import ----------------------------------------------------------------------


def test_importing_the_same_file_twice_changes_nothing():
    first = leads_import(
        file=DATA / "crm_export.csv", by=None, mapping=mapping_read(EXAMPLES / "crm-export.toml")
    )
    stamps = dict(Lead.objects.values_list("pk", "updated_at"))
    history = StageChange.objects.count()

    second = leads_import(
        file=DATA / "crm_export.csv", by=None, mapping=mapping_read(EXAMPLES / "crm-export.toml")
    )

    assert (first.created, first.unchanged) == (4, 0)
    assert (second.created, second.updated, second.unchanged, second.bad_rows) == (0, 0, 4, 0)
    assert dict(Lead.objects.values_list("pk", "updated_at")) == stamps
    assert StageChange.objects.count() == history == 4


def test_a_changed_row_updates_only_its_lead(tmp_path):
    path = csv_file(tmp_path, "email,company\na@example.com,A\nb@example.com,B\n")
    leads_import(file=path, by=None)
    stamps = dict(Lead.objects.values_list("email", "updated_at"))
    path = csv_file(tmp_path, "email,company\na@example.com,A\nb@example.com,B2\n")

    result = leads_import(file=path, by=None)

    assert (result.created, result.updated, result.unchanged) == (0, 1, 1)
    after = dict(Lead.objects.values_list("email", "updated_at"))
    assert after["a@example.com"] == stamps["a@example.com"]
    assert after["b@example.com"] > stamps["b@example.com"]
    assert Lead.objects.get(email="b@example.com").company == "B2"


def test_email_matches_in_any_letter_case_and_is_stored_lower_case(tmp_path):
    LeadFactory(email="ann@example.com", company="Old")
    path = csv_file(tmp_path, "Email,Company\nANN@Example.COM ,New\nNew.Person@Example.com,N\n")

    result = leads_import(file=path, by=None)

    assert (result.created, result.updated) == (1, 1)
    assert Lead.objects.get(email="ann@example.com").company == "New"
    assert Lead.objects.filter(email="new.person@example.com").exists()


def test_external_id_is_matched_before_email(tmp_path):
    known = LeadFactory(external_id="crm-1", email="old@example.com")
    path = csv_file(tmp_path, "id,email\n1,new@example.com\n")

    result = leads_import(
        file=path, by=None, mapping={"external_id": {"column": "id", "prefix": "crm-"}}
    )

    assert result.updated == 1
    known.refresh_from_db()
    assert known.email == "new@example.com"
    assert Lead.objects.count() == 1


def test_a_lead_found_by_email_gets_the_external_id(tmp_path):
    known = LeadFactory(email="plain@example.com", external_id=None)
    path = csv_file(tmp_path, "external_id,email\nX-9,plain@example.com\n")

    leads_import(file=path, by=None)

    known.refresh_from_db()
    assert known.external_id == "X-9"


def test_keys_that_point_at_two_different_leads_are_a_bad_row(tmp_path):
    LeadFactory(external_id="A", email="a@example.com")
    LeadFactory(external_id="B", email="b@example.com")
    path = csv_file(tmp_path, "external_id,email\nA,b@example.com\nC,a@example.com\n")

    result = leads_import(file=path, by=None)

    assert problems(result) == [(2, "email"), (3, "external_id")]
    assert "belongs to another lead than external id 'A'" in result.errors[0].reason
    assert "belongs to the lead with external id 'A', not 'C'" in result.errors[1].reason
    assert set(Lead.objects.values_list("external_id", "email")) == {
        ("A", "a@example.com"),
        ("B", "b@example.com"),
    }


def test_the_same_lead_twice_in_one_file_keeps_the_first_row_and_reports_the_others(tmp_path):
    LeadFactory(external_id="K", email="k@example.com")
    path = csv_file(
        tmp_path,
        "external_id,email,company\n"
        ",dup@example.com,First\n"
        ",DUP@example.com,Second\n"
        "E1,e1@example.com,One\n"
        "E1,e2@example.com,Two\n"
        "K,,Known by id\n"
        ",k@example.com,Known by email\n",
    )

    # batches of two rows: duplicates are found across batches, not only within one
    result = leads_import(file=path, by=None, batch_size=2)

    assert Lead.objects.get(email="dup@example.com").company == "First"
    assert Lead.objects.get(external_id="E1").email == "e1@example.com"
    assert Lead.objects.get(external_id="K").company == "Known by id"
    assert problems(result) == [(3, "email"), (5, "external_id"), (7, "")]
    assert "also on row 2" in result.errors[0].reason
    assert "also on row 4" in result.errors[1].reason
    assert "same lead as row 6" in result.errors[2].reason


def test_row_number_external_ids_are_stable_across_re_imports(tmp_path):
    path = csv_file(tmp_path, "age,y\n30,no\n41,yes\n")
    mapping = {"external_id": {"row_number": True, "prefix": "bank-"}}

    leads_import(file=path, by=None, mapping=mapping)
    again = leads_import(file=path, by=None, mapping=mapping)

    assert sorted(Lead.objects.values_list("external_id", flat=True)) == ["bank-2", "bank-3"]
    assert again.unchanged == 2


# --- bad rows, dry run, all or nothing -----------------------------------------------------------

BAD_FILE = (
    "email,external_id,company_size,outcome,company\n"
    "good@example.com,,10,won,Good\n"  # row 2
    "not-an-email,,10,,Bad email\n"  # row 3
    "size@example.com,,50-200,,Bad size\n"  # row 4
    "outcome@example.com,,5,maybe,Bad outcome\n"  # row 5
    ",,5,,No key\n"  # row 6
    "wide@example.com,,5,,Wide,extra\n"  # row 7
    "short@example.com,,5\n"  # row 8
    "also.good@example.com,ext-2,,lost,Also good\n"  # row 9
)
OUTCOME_MAPPING = {"outcome": {"column": "outcome", "won": ["won"], "lost": ["lost"]}}


def test_bad_rows_are_listed_with_row_column_and_reason_and_good_rows_imported(tmp_path):
    result = leads_import(file=csv_file(tmp_path, BAD_FILE), by=None, mapping=OUTCOME_MAPPING)

    assert sorted(Lead.objects.values_list("email", flat=True)) == [
        "also.good@example.com",
        "good@example.com",
    ]
    assert (result.created, result.bad_rows, result.written) == (2, 6, True)
    assert [(e.row, e.column, e.reason) for e in result.errors] == [
        (3, "email", "'not-an-email' is not a valid email address"),
        (4, "company_size", "'50-200' is not a whole number"),
        (5, "outcome", "unknown outcome value 'maybe' (expected one of: lost, won)"),
        (6, "email", "no email and no external id: a lead needs at least one of them"),
        (
            7,
            "",
            "too many columns: 6 values, the header has 5 "
            "(a delimiter or line break in an unquoted value?)",
        ),
        (
            8,
            "",
            "too few columns: 3 values, the header has 5 "
            "(a delimiter or line break in an unquoted value?)",
        ),
    ]


def test_a_value_longer_than_the_field_is_a_bad_row_not_a_failed_batch(tmp_path):
    path = csv_file(
        tmp_path, f"email,first_name\nlong@example.com,{'x' * 101}\nok@example.com,Ok\n"
    )

    result = leads_import(file=path, by=None)

    assert problems(result) == [(2, "first_name")]
    assert list(Lead.objects.values_list("email", flat=True)) == ["ok@example.com"]


def test_dry_run_reports_everything_and_writes_nothing(tmp_path):
    result = leads_import(
        file=csv_file(tmp_path, BAD_FILE + "src@example.com,,,,S\n"),
        by=None,
        mapping=OUTCOME_MAPPING,
        dry_run=True,
    )

    assert (result.created, result.bad_rows, result.won, result.lost) == (3, 6, 1, 1)
    assert result.written is False
    assert "Dry run" in result.summary()
    assert not Lead.objects.exists()
    assert not StageChange.objects.exists()


def test_dry_run_does_not_create_sources(tmp_path):
    path = csv_file(tmp_path, "email,source\nd1@example.com,Podcast\nd2@example.com,podcast\n")

    result = leads_import(file=path, by=None, dry_run=True, batch_size=1)

    assert result.sources_created == 1
    assert not Source.objects.exists()


def test_atomic_import_writes_nothing_when_any_row_is_bad(tmp_path):
    result = leads_import(
        file=csv_file(tmp_path, BAD_FILE), by=None, mapping=OUTCOME_MAPPING, atomic=True
    )

    assert (result.bad_rows, result.written) == (6, False)
    assert "Nothing was written" in result.summary()
    assert not Lead.objects.exists()
    assert not StageChange.objects.exists()


def test_atomic_import_writes_every_row_when_all_are_good(tmp_path):
    path = csv_file(tmp_path, "email,source\na1@example.com,Fair\na2@example.com,Fair\n")

    result = leads_import(file=path, by=None, atomic=True, batch_size=1)

    assert (result.created, result.written, result.phase) == (2, True, "write_all")
    assert Lead.objects.count() == 2


def test_stored_errors_are_capped_but_all_bad_rows_are_counted(tmp_path):
    rows = "".join(f"bad{i}\n" for i in range(MAX_STORED_ERRORS + 100))
    result = leads_import(file=csv_file(tmp_path, "email\n" + rows), by=None)

    assert result.bad_rows == MAX_STORED_ERRORS + 100
    assert len(result.errors) == MAX_STORED_ERRORS
    assert result.errors_truncated


def test_each_batch_costs_a_fixed_number_of_queries(tmp_path, django_assert_num_queries):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip(
            "SQLite scores imported leads one by one (the laptop path); pinned on PostgreSQL"
        )

    def run(rows: int) -> None:
        text = "email,source,y\n" + "".join(
            f"q{rows}-{i}@example.com,Web,yes\n" for i in range(rows)
        )
        leads_import(
            file=csv_file(tmp_path, text),
            by=None,
            mapping={"outcome": {"column": "y", "won": ["yes"], "lost": ["no"]}},
            batch_size=20,
        )

    SourceFactory(name="Web", key="web")
    # campaigns once; per batch: savepoint, leads (locked), sources, insert leads, their events,
    # the webhooks' gate (asked once per write of events that react), their outbox entries (the
    # KPI rollup), insert history, its events, then the set-based scoring of the batch (active
    # model, savepoint, lock, the state before, the statement and its helpers, the crossings),
    # release
    run(2)
    with django_assert_num_queries(1 + 18):
        run(20)
    with django_assert_num_queries(1 + 18 * 2):
        run(40)


# --- outcomes ------------------------------------------------------------------------------------


def test_outcome_sets_the_terminal_stage_with_history_once(marketer):
    mapping = mapping_read(EXAMPLES / "crm-export.toml")

    leads_import(file=DATA / "crm_export.csv", by=marketer, mapping=mapping)
    leads_import(file=DATA / "crm_export.csv", by=marketer, mapping=mapping)

    kim = Lead.objects.get(external_id="crm-8cc8c611")
    assert kim.stage == Stage.WON
    assert kim.won_at is not None and kim.stage_changed_at == kim.won_at
    assert kim.deal_value is None
    ivan = Lead.objects.get(email="ivan@example.com")
    assert (ivan.stage, ivan.lost_at is not None) == (Stage.LOST, True)
    history = list(kim.stage_changes.all())
    assert [(h.from_stage, h.to_stage, h.by, h.by_system) for h in history] == [
        (Stage.NEW, Stage.WON, marketer, "import")
    ]
    assert history[0].at == kim.won_at
    assert StageChange.objects.count() == 4


def test_outcome_date_column_dates_the_stage_and_the_history(tmp_path):
    path = csv_file(
        tmp_path,
        "email,result,closed\nw@example.com,won,2023-05-04\nf@example.com,won,2999-01-01\n",
    )
    mapping = {"outcome": {"column": "result", "won": ["won"], "lost": ["lost"], "at": "closed"}}

    result = leads_import(file=path, by=None, mapping=mapping)

    lead = Lead.objects.get(email="w@example.com")
    assert timezone.localtime(lead.won_at).date().isoformat() == "2023-05-04"
    assert lead.created_at <= lead.won_at
    assert lead.stage_changes.get().at == lead.won_at
    assert problems(result) == [(3, "closed")]


def test_open_outcome_values_leave_the_stage_alone(tmp_path):
    path = csv_file(tmp_path, "email,status\no@example.com,Open\n")
    mapping = {"outcome": {"column": "status", "won": ["Won"], "lost": ["Lost"], "open": ["open"]}}

    leads_import(file=path, by=None, mapping=mapping)

    assert Lead.objects.get().stage == Stage.NEW
    assert not StageChange.objects.exists()


def test_outcome_moves_a_nurturing_lead_from_its_own_stage(tmp_path):
    LeadFactory(email="nurt@example.com", stage=Stage.NURTURING)
    path = csv_file(tmp_path, "email,y\nnurt@example.com,yes\n")

    leads_import(
        file=path, by=None, mapping={"outcome": {"column": "y", "won": "yes", "lost": "no"}}
    )

    lead = Lead.objects.get()
    assert lead.stage == Stage.WON
    assert lead.stage_changes.get().from_stage == Stage.NURTURING


@pytest.mark.parametrize("stage", [Stage.SAL, Stage.OPPORTUNITY, Stage.WON, Stage.REJECTED])
def test_a_lead_further_along_keeps_its_stage_on_re_import(tmp_path, stage):
    before = LeadFactory(email="live@example.com", stage=stage, company="Old")
    path = csv_file(tmp_path, "email,company,y\nlive@example.com,New,no\n")

    result = leads_import(
        file=path, by=None, mapping={"outcome": {"column": "y", "won": "yes", "lost": "no"}}
    )

    lead = Lead.objects.get()
    assert (lead.stage, lead.stage_changed_at, lead.company) == (
        stage,
        before.stage_changed_at,
        "New",
    )
    assert not StageChange.objects.exists()
    assert result.outcome_kept == 1
    assert "kept their stage" in result.summary()


# --- permissions ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("person", "allowed"),
    [
        ("marketer", True),
        ("marketing_manager", True),
        ("admin", True),
        ("rep", False),
        ("sales_manager", False),
        ("outsider", False),
    ],
)
def test_who_may_import(people, person, allowed):
    user = people[person]
    if allowed:
        assert leads_import(file=DATA / "comma.csv", by=user).created == 3
    else:
        with pytest.raises(PermissionDenied, match="may not do lead.import"):
            leads_import(file=DATA / "comma.csv", by=user)
        assert not Lead.objects.exists()


# --- the mapping file ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"fields": {"emial": "Email"}}, "no lead field 'emial'"),
        ({"felds": {}}, "no setting 'felds'"),
        ({"attributes": {"x": {"column": "a", "type": "date"}}}, "type 'date' is unknown"),
        ({"external_id": {"prefix": "p-"}}, "column = .* or row_number = true"),
        ({"outcome": {"column": "y", "won": ["yes"]}}, r"\[outcome\] needs lost"),
        ({"outcome": {"column": "y", "won": ["yes"], "lost": ["YES"]}}, "listed twice"),
        ({"constants": {"email": "a@b.c"}}, "cannot set 'email'"),
        ({"unmapped": "drop"}, 'unmapped must be "attributes" or "ignore"'),
        ({"fields": {"email": ["a"]}}, "fields.email must be a text value"),
    ],
)
def test_a_bad_mapping_is_refused_with_a_readable_message(mapping, message):
    with pytest.raises(DomainError, match=message):
        mapping_from_dict(mapping)


def test_a_mapping_that_names_a_column_the_file_lacks_is_refused_before_writing():
    with pytest.raises(
        DomainError, match=r"fields.email refers to column 'E-Mail', which is not in the file"
    ):
        leads_import(file=DATA / "comma.csv", by=None, mapping={"fields": {"email": "E-Mail"}})
    assert not Lead.objects.exists()


def test_a_constant_the_database_would_refuse_is_a_mapping_error():
    with pytest.raises(DomainError, match="constants.company_size: 'many' is not a whole number"):
        leads_import(
            file=DATA / "comma.csv", by=None, mapping={"constants": {"company_size": "many"}}
        )


def test_mapping_files_in_toml_and_json_syntax_errors_are_readable():
    with pytest.raises(DomainError, match="not valid TOML.*line 2"):
        mapping_loads(b"[fields]\nemail = Email\n", filename="m.toml")
    with pytest.raises(DomainError, match=r"not valid JSON.*line 1, column 2"):
        mapping_loads(b"{fields", filename="m.json")
    with pytest.raises(DomainError, match="ends in .toml or .json"):
        mapping_loads(b"", filename="m.yaml")


def test_two_columns_with_the_same_attribute_key_are_refused(tmp_path):
    path = csv_file(tmp_path, "email,First.Colour,first colour\na@example.com,red,blue\n")

    with pytest.raises(DomainError, match="would both be stored as attribute 'first_colour'"):
        leads_import(file=path, by=None)


@pytest.mark.parametrize("example", sorted(EXAMPLES.glob("*.*")), ids=lambda p: p.name)
def test_the_shipped_example_mappings_are_valid(example):
    mapping_from_dict(mapping_read(example))


def test_the_webinar_example_imports_its_sample(tmp_path):
    spring = CampaignFactory(utm_campaign="spring-webinar")

    leads_import(
        file=DATA / "webinar.csv",
        by=None,
        mapping=mapping_read(EXAMPLES / "webinar-attendees.json"),
    )

    mia = Lead.objects.get(email="mia@example.com")
    assert (mia.first_name, mia.title, mia.company, mia.source.name, mia.campaign) == (
        "Mia",
        "CTO",
        "Moser AG",
        "Webinar",
        spring,
    )
    assert mia.attributes == {"webinar_attended": True, "webinar_minutes": 55}
    assert Lead.objects.get(email="noah@example.com").attributes == {"webinar_attended": False}


# --- the command ---------------------------------------------------------------------------------


def run_command(*args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("import_leads", *[str(a) for a in args], stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_command_imports_and_prints_a_summary_and_a_progress_bar():
    out, err = run_command(DATA / "crm_export.csv", "--mapping", EXAMPLES / "crm-export.toml")

    assert "crm_export.csv: utf-8, delimiter ',', 4 rows." in out
    assert "Imported. 4 rows: 4 created, 0 updated, 0 unchanged, 0 bad." in out
    assert "Outcomes: 2 won, 2 lost." in out
    assert "importing" in err and "4/4" in err
    assert StageChange.objects.filter(by=None, by_system="import").count() == 4


def test_command_lists_bad_rows_and_exits_non_zero(tmp_path):
    path = csv_file(tmp_path, BAD_FILE)
    mapping = tmp_path / "outcome.json"
    mapping.write_text(json.dumps(OUTCOME_MAPPING))

    with pytest.raises(
        CommandError, match="6 bad rows were not imported \\(the other rows were imported\\)"
    ):
        run_command(path, "--mapping", mapping)

    assert Lead.objects.count() == 2


def test_command_prints_the_bad_rows(tmp_path, capsys):
    path = csv_file(tmp_path, "email\nok@example.com\nnope\n")
    out = io.StringIO()

    with pytest.raises(CommandError):
        call_command("import_leads", str(path), stdout=out, stderr=io.StringIO())

    assert (
        "Bad rows:\n  row 3, column 'email': 'nope' is not a valid email address" in out.getvalue()
    )


def test_command_dry_run_and_atomic_write_nothing(tmp_path):
    path = csv_file(tmp_path, "email;company\nd@example.com;D\nbad;B\n")

    with pytest.raises(CommandError, match="nothing was written"):
        run_command(path, "--dry-run", "--delimiter", ";")
    with pytest.raises(CommandError, match="nothing was written"):
        run_command(path, "--atomic")
    assert not Lead.objects.exists()

    out, _ = run_command(DATA / "latin1.csv", "--dry-run", "--encoding", "latin-1")
    assert "Dry run, nothing was written. 2 rows: 2 would be created" in out
    assert not Lead.objects.exists()


def test_command_refuses_bad_input_with_a_readable_message(tmp_path):
    with pytest.raises(CommandError, match="Cannot read .*missing.csv"):
        run_command(tmp_path / "missing.csv")
    bad = tmp_path / "bad.toml"
    bad.write_text('[fields]\nemail = "Mail"\n')
    with pytest.raises(CommandError, match="refers to column 'Mail'"):
        run_command(DATA / "comma.csv", "--mapping", bad)
    with pytest.raises(CommandError, match="Mapping: cannot read"):
        run_command(DATA / "comma.csv", "--mapping", tmp_path / "none.toml")


# --- the task and the page -----------------------------------------------------------------------


def make_job(user, content: bytes, **options) -> ImportJob:
    return ImportJob.objects.create(
        created_by=user,
        file=SimpleUploadedFile("leads.csv", content),
        filename="leads.csv",
        **options,
    )


def test_task_runs_a_job_once_and_records_counts_and_errors(marketer):
    job = make_job(marketer, b"email,company\na@example.com,A\nbad,B\n")

    import_job_run(job.pk)
    import_job_run(job.pk)  # a second delivery finds the job claimed

    job.refresh_from_db()
    assert job.status == ImportStatus.DONE
    assert (job.total_rows, job.processed_rows, job.created_count, job.error_count) == (2, 2, 1, 1)
    assert job.errors == [
        {"row": 3, "column": "email", "reason": "'bad' is not a valid email address"}
    ]
    assert job.started_at and job.finished_at
    assert Lead.objects.count() == 1


def test_task_returns_quietly_for_a_job_that_is_gone():
    import_job_run(987654)


def test_task_marks_the_job_failed_with_the_reason(marketer):
    job = make_job(marketer, b"email\na@example.com\n", mapping={"fields": {"email": "Mail"}})

    import_job_run(job.pk)

    job.refresh_from_db()
    assert job.status == ImportStatus.FAILED
    assert "refers to column 'Mail'" in job.message


def test_task_caps_stored_errors_but_counts_them_all(marketer):
    rows = "".join(f"bad{i}\n" for i in range(MAX_STORED_ERRORS + 5))
    job = make_job(marketer, ("email\n" + rows).encode())

    import_job_run(job.pk)

    job.refresh_from_db()
    assert (job.error_count, len(job.errors)) == (MAX_STORED_ERRORS + 5, MAX_STORED_ERRORS)


def test_task_records_progress_while_it_runs(marketer, monkeypatch):
    from leads.importing import services

    seen = []
    real = services.leads_import

    def spy(**kwargs):
        report = kwargs["progress"]

        def progress(result):
            report(result)
            job = ImportJob.objects.get()
            seen.append((job.status, job.processed_rows, job.total_rows))

        return real(**{**kwargs, "progress": progress, "batch_size": 1})

    monkeypatch.setattr(services, "leads_import", spy)
    make_job(marketer, b"email\na@example.com\nb@example.com\n")

    import_job_run(ImportJob.objects.get().pk)

    assert seen == [("running", 0, 2), ("running", 1, 2), ("running", 2, 2)]


def upload(client, content: bytes, mapping: tuple[str, bytes] | None = None, **fields):
    data = {"file": SimpleUploadedFile("upload.csv", content), **fields}
    if mapping:
        data["mapping"] = SimpleUploadedFile(*mapping)
    return client.post(reverse("leads:import"), data)


def test_page_upload_runs_the_job_and_the_status_shows_counts_and_errors(
    client, marketer, django_capture_on_commit_callbacks, settings
):
    client.force_login(marketer)
    content = (DATA / "crm_export.csv").read_bytes() + b"bad-id,,nope,x,,,\n"
    mapping = ("crm.toml", (EXAMPLES / "crm-export.toml").read_bytes())

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = upload(client, content, mapping)

    job = ImportJob.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("leads:import_job", args=[job.pk])
    # the job queued once, and the outbox's kick (the new leads' KPI rollup) when it ran
    assert len(callbacks) == 2
    status = client.get(reverse("leads:import_status", args=[job.pk])).json()
    assert status["status"] == "done" and status["finished"] is True
    assert (status["created"], status["bad_rows"], status["progress_percent"]) == (4, 1, 100)
    assert status["errors"] == [
        {"row": 6, "column": "Email", "reason": "'nope' is not a valid email address"}
    ]
    assert job.created_by == marketer
    # the finished job keeps its report, not the upload
    assert not job.file
    assert [p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file()] == []
    page = client.get(reverse("leads:import_job", args=[job.pk]))
    assert page.status_code == 200
    assert b"&#x27;nope&#x27; is not a valid email address" in page.content
    assert b'class="progress"' in page.content
    assert StageChange.objects.filter(by=marketer).count() == 4


def test_page_shows_the_form_and_recent_jobs(client, marketing_manager):
    client.force_login(marketing_manager)
    make_job(marketing_manager, b"email\n")

    response = client.get(reverse("leads:import"))

    assert response.status_code == 200
    assert b'enctype="multipart/form-data"' in response.content
    assert b"leads.csv" in response.content


def test_page_options_reach_the_job(client, marketer, django_capture_on_commit_callbacks):
    client.force_login(marketer)

    with django_capture_on_commit_callbacks(execute=True):
        upload(
            client,
            b"email;company\nd@example.com;D\n",
            delimiter=";",
            encoding="latin-1",
            dry_run="on",
        )

    job = ImportJob.objects.get()
    assert (job.delimiter, job.encoding, job.dry_run, job.status) == (
        ";",
        "iso8859-1",
        True,
        "done",
    )
    assert job.created_count == 1
    assert not Lead.objects.exists()


def test_page_refuses_a_mapping_that_does_not_fit_the_file(client, marketer):
    client.force_login(marketer)

    response = upload(client, b"email\na@example.com\n", ("m.toml", b'[fields]\nemail = "Mail"\n'))

    assert response.status_code == 400
    assert b"refers to column &#x27;Mail&#x27;" in response.content
    assert not ImportJob.objects.exists()


def test_page_refuses_a_broken_mapping_file(client, marketer):
    client.force_login(marketer)

    response = upload(client, b"email\na@example.com\n", ("m.toml", b"fields = {"))

    assert response.status_code == 400
    assert b"not valid TOML" in response.content


@pytest.mark.parametrize("person", ["rep", "sales_manager", "outsider"])
def test_page_upload_is_refused_to_roles_that_may_not_import(client, people, person):
    client.force_login(people[person])

    assert client.get(reverse("leads:import")).status_code == 403
    assert upload(client, b"email\na@example.com\n").status_code == 403
    assert not ImportJob.objects.exists()


def test_outsider_may_not_see_a_job_and_anonymous_is_sent_to_login(client, marketer, outsider):
    job = make_job(marketer, b"email\n")

    assert client.get(reverse("leads:import_status", args=[job.pk])).status_code == 302
    client.force_login(outsider)
    assert client.get(reverse("leads:import_job", args=[job.pk])).status_code == 403
    assert client.get(reverse("leads:import_status", args=[job.pk])).status_code == 403


def test_a_sales_rep_may_watch_a_job(client, marketer, rep):
    job = make_job(marketer, b"email\n")
    client.force_login(rep)

    assert client.get(reverse("leads:import_status", args=[job.pk])).json()["status"] == "queued"


# --- the real data -------------------------------------------------------------------------------


def test_the_bank_marketing_file_imports_every_row_with_its_outcome():
    if not BANK_CSV.is_file():
        pytest.skip(f"{BANK_CSV} is missing (the UCI Bank Marketing data lives in ../shared/data/)")
    mapping = mapping_read(EXAMPLES / "bank-marketing.toml")

    result = leads_import(file=BANK_CSV, by=None, mapping=mapping)

    assert (result.created, result.bad_rows) == (41_188, 0)
    assert Lead.objects.count() == 41_188
    assert Lead.objects.filter(stage=Stage.WON).count() == 4_640
    assert Lead.objects.filter(stage=Stage.LOST).count() == 41_188 - 4_640
    assert StageChange.objects.filter(by_system="import").count() == 41_188
    first = Lead.objects.get(external_id="bank-2")
    assert first.attributes["post_call_duration"] == 261
    assert first.attributes["age"] == 56 and first.attributes["euribor3m"] == 4.857
    assert first.attributes["job"] == "housemaid"
    assert "default" not in Lead.objects.get(external_id="bank-3").attributes  # "unknown"
    assert "y" not in first.attributes
    assert first.source.name == "Bank telemarketing"
    # duration is an attribute only: no lead field of that name exists to score on
    assert "duration" not in {f.name for f in Lead._meta.get_fields()}


def test_the_mapping_examples_in_the_documentation_are_valid():
    text = (REPO / "docs" / "import.md").read_text()
    blocks = re.findall(r"```(toml|json)\n(.*?)```", text, flags=re.S)
    mappings = [mapping_loads(body.encode(), filename=f"example.{kind}") for kind, body in blocks]
    # the status endpoint's answer is shown as JSON too; it is not a mapping
    mappings = [m for m in mappings if "status" not in m]

    assert len(mappings) == 2
    for mapping in mappings:
        mapping_from_dict(mapping)


def test_an_all_or_nothing_job_checks_first_and_then_writes(marketer):
    job = make_job(marketer, b"email\na@example.com\nb@example.com\n", atomic=True)

    import_job_run(job.pk)

    job.refresh_from_db()
    assert (job.status, job.created_count, job.processed_rows) == ("done", 2, 2)
    assert job.message.startswith("Imported.")
    assert Lead.objects.count() == 2


def test_an_all_or_nothing_job_with_a_bad_row_writes_nothing(marketer):
    job = make_job(marketer, b"email\na@example.com\nbad\n", atomic=True)

    import_job_run(job.pk)

    job.refresh_from_db()
    assert (job.status, job.error_count) == ("done", 1)
    assert job.message.startswith("Nothing was written")
    assert not Lead.objects.exists()


def test_decimal_comma_numbers_in_a_semicolon_file(tmp_path):
    path = csv_file(tmp_path, "email;rate;count\ndc@example.com;1,5;1.200\n")

    leads_import(file=path, by=None, mapping={"decimal": ","})

    # "1.200" is not a decimal-comma number: it stays text rather than becoming 1.2 or 1200
    assert Lead.objects.get().attributes == {"rate": 1.5, "count": "1.200"}


def test_utf16_file_with_a_byte_order_mark_is_detected(tmp_path):
    path = tmp_path / "utf16.csv"
    path.write_bytes("email\tcompany\r\nu16@example.com\tÜber AG\r\n".encode("utf-16"))

    result = leads_import(file=path, by=None)

    assert (result.encoding, result.delimiter) == ("utf-16", "\t")
    assert Lead.objects.get().company == "Über AG"
