import pytest
from django.core.exceptions import ImproperlyConfigured

from alignment.lib.env import env_bool, env_database, env_email, env_int, env_list


def test_bool_accepts_common_spellings(monkeypatch):
    monkeypatch.setenv("FLAG", "Yes")
    assert env_bool("FLAG") is True
    monkeypatch.setenv("FLAG", "0")
    assert env_bool("FLAG") is False


def test_bool_refuses_nonsense(monkeypatch):
    monkeypatch.setenv("FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="FLAG='maybe' is not a boolean"):
        env_bool("FLAG", False)


def test_empty_value_means_default(monkeypatch):
    monkeypatch.setenv("FLAG", "")
    assert env_bool("FLAG", True) is True


def test_missing_required_value_fails(monkeypatch):
    monkeypatch.delenv("NEEDED", raising=False)
    with pytest.raises(ImproperlyConfigured, match="NEEDED is required"):
        env_int("NEEDED")


def test_int_refuses_text(monkeypatch):
    monkeypatch.setenv("N", "ten")
    with pytest.raises(ImproperlyConfigured, match="not an integer"):
        env_int("N", 1)


def test_list_splits_and_strips(monkeypatch):
    monkeypatch.setenv("HOSTS", " a.example , b.example,,")
    assert env_list("HOSTS") == ["a.example", "b.example"]


def test_database_url_postgres(monkeypatch):
    monkeypatch.setenv("DB", "postgres://u:p@db.example:6543/pipe")
    config = env_database("DB", "sqlite:///x")
    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert (config["HOST"], config["PORT"], config["NAME"]) == ("db.example", 6543, "pipe")


def test_database_url_unknown_scheme_fails(monkeypatch):
    monkeypatch.setenv("DB", "oracle-ish://nowhere")
    with pytest.raises(ImproperlyConfigured, match="DB="):
        env_database("DB", "sqlite:///x")


def test_email_url_smtp_tls(monkeypatch):
    monkeypatch.setenv("MAIL", "smtp+tls://me%40x.org:s3cret@mail.example:587")
    config = env_email("MAIL", "console://")
    assert config["EMAIL_HOST"] == "mail.example"
    assert config["EMAIL_PORT"] == 587
    assert config["EMAIL_HOST_USER"] == "me@x.org"
    assert config["EMAIL_USE_TLS"] is True


def test_email_url_file_default(tmp_path, monkeypatch):
    monkeypatch.delenv("MAIL", raising=False)
    config = env_email("MAIL", f"file://{tmp_path}")
    assert config["EMAIL_FILE_PATH"] == str(tmp_path)


def test_email_url_bad_scheme_fails(monkeypatch):
    monkeypatch.setenv("MAIL", "pigeon://coop")
    with pytest.raises(ImproperlyConfigured, match="scheme must be"):
        env_email("MAIL", "console://")
