"""Strict environment parsing: a value that cannot be understood stops the process at start-up."""

import os
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

import environ
from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_UNSET = object()
_SUPPORTED_ENGINES = {"django.db.backends.postgresql", "django.db.backends.sqlite3"}


def _raw(name: str, default: object) -> str | object:
    value = os.environ.get(name)
    # an empty value (NAME= in an env file) means "not set": the default applies
    if value is None or value.strip() == "":
        if default is _UNSET:
            raise ImproperlyConfigured(f"Environment variable {name} is required but not set.")
        return default
    return value


def env_str(name: str, default: str | object = _UNSET) -> str:
    return _raw(name, default)  # type: ignore[return-value]


def env_bool(name: str, default: bool | object = _UNSET) -> bool:
    value = _raw(name, default)
    if isinstance(value, bool):
        return value
    lowered = str(value).strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean: use one of 1/0, true/false.")


def env_int(name: str, default: int | object = _UNSET) -> int:
    value = _raw(name, default)
    if isinstance(value, int):
        return value
    try:
        return int(str(value).strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not an integer.") from None


def env_list(name: str, default: list[str] | object = _UNSET) -> list[str]:
    value = _raw(name, default)
    if isinstance(value, list):
        return value
    return [item.strip() for item in str(value).split(",") if item.strip()]


def env_database(name: str, default: str) -> dict:
    """A DATABASE_URL such as postgres://user@host:5432/db or sqlite:////abs/path.sqlite3."""
    value = str(_raw(name, default))
    try:
        config = environ.Env.db_url_config(value)
    except Exception as exc:
        raise ImproperlyConfigured(f"{name}={value!r} is not a database URL: {exc}") from None
    if config.get("ENGINE") not in _SUPPORTED_ENGINES:
        raise ImproperlyConfigured(
            f"{name}={value!r}: unsupported database; use postgres://... or sqlite:///..."
        )
    if config["ENGINE"].endswith("sqlite3"):
        Path(config["NAME"]).parent.mkdir(parents=True, exist_ok=True)
        config.setdefault("OPTIONS", {})
        # wait for the other writer instead of failing at once (web, worker and beat share the file)
        config["OPTIONS"].setdefault("timeout", 20)
    else:
        config.setdefault("CONN_MAX_AGE", 60)
        config.setdefault("CONN_HEALTH_CHECKS", True)
    return config


def env_email(name: str, default: str) -> dict:
    """EMAIL_URL: smtp://user:pass@host:25, smtp+tls://..., smtp+ssl://..., file:///path, console://."""
    value = str(_raw(name, default))
    url = urlparse(value)
    query = {key: values[-1] for key, values in parse_qs(url.query).items()}
    if url.scheme == "file":
        path = unquote(url.path) or "var/mail"
        return {
            "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "EMAIL_FILE_PATH": path,
        }
    if url.scheme == "console":
        return {"EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend"}
    if url.scheme == "locmem":
        return {"EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend"}
    if url.scheme in {"smtp", "smtp+tls", "smtp+ssl"}:
        if not url.hostname:
            raise ImproperlyConfigured(f"{name}={value!r} has no host.")
        try:
            port = url.port or (465 if url.scheme == "smtp+ssl" else 25)
        except ValueError:
            raise ImproperlyConfigured(f"{name}={value!r} has an invalid port.") from None
        return {
            "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "EMAIL_HOST": url.hostname,
            "EMAIL_PORT": port,
            "EMAIL_HOST_USER": unquote(url.username or ""),
            "EMAIL_HOST_PASSWORD": unquote(url.password or ""),
            "EMAIL_USE_TLS": url.scheme == "smtp+tls",
            "EMAIL_USE_SSL": url.scheme == "smtp+ssl",
            "EMAIL_TIMEOUT": int(query.get("timeout", 10)),
        }
    raise ImproperlyConfigured(
        f"{name}={value!r}: scheme must be smtp, smtp+tls, smtp+ssl, file, console or locmem."
    )
