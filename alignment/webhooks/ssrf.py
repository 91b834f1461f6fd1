"""Server-side request forgery guard: a webhook URL may only reach public addresses.

Checked when an endpoint is saved (a clear error for the admin) and again when each request
connects: the connection is made to the very addresses that were checked, so a name that
resolves to a public address at save time and to 169.254.169.254 later is refused then, and no
second lookup between check and connect can change the answer. Private addresses are allowed
when DEBUG is on or WEBHOOKS_ALLOW_PRIVATE is set (tests, a receiver on the same network).
"""

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings

from alignment.lib.errors import DomainError

SCHEMES = ("http", "https")


class UnsafeAddress(DomainError):
    """The URL's host is, or resolves to, an address a webhook may not reach."""


def private_allowed() -> bool:
    return bool(settings.DEBUG or getattr(settings, "WEBHOOKS_ALLOW_PRIVATE", False))


def _refused(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    )


def address_refused(address: str) -> bool:
    """True for any address that is not plainly public: private, loopback, link-local
    (cloud metadata), multicast, reserved, unspecified, shared (CGNAT) or documentation, also
    when it is an IPv4 address inside IPv6 (mapped, 6to4)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is not None and _refused(embedded):
            return True
        if ip.ipv4_mapped is not None:
            return False
    return _refused(ip)


def url_parts(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an acceptable webhook URL, or a DomainError on field `url`."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise DomainError("This is not a valid URL.", field="url") from None
    if parts.scheme not in SCHEMES:
        raise DomainError("A webhook URL starts with https:// (or http://).", field="url")
    if not parts.hostname:
        raise DomainError("A webhook URL names a host.", field="url")
    if parts.username is not None or parts.password is not None:
        raise DomainError(
            "Put no credentials in the URL; receivers verify the signature instead.", field="url"
        )
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80)


def resolve(host: str, port: int) -> list[tuple]:
    """Every (family, type, proto, canonname, sockaddr) the host resolves to, each address
    checked; raises UnsafeAddress if any one of them is refused."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise UnsafeAddress(
            f"The host {host} could not be resolved ({error}).", field="url"
        ) from None
    if not infos:
        raise UnsafeAddress(f"The host {host} has no address.", field="url")
    if not private_allowed():
        for info in infos:
            address = info[4][0]
            if address_refused(address):
                where = address if address == host else f"{host} resolves to {address}, which"
                raise UnsafeAddress(
                    f"{where} is a private or reserved address; webhooks only go to public "
                    "addresses.",
                    field="url",
                )
    return infos


def url_check(url: str) -> None:
    """Raise DomainError (field `url`) unless `url` is http(s) to a host that resolves only to
    addresses a webhook may reach."""
    _, host, port = url_parts(url)
    resolve(host, port)


def guarded_create_connection(address, timeout=socket._GLOBAL_DEFAULT_TIMEOUT, source_address=None):
    """socket.create_connection, but to the checked addresses only (http.client's hook): each
    is an IP literal, so nothing is looked up again between the check and the connection."""
    host, port = address
    last_error: OSError | None = None
    for *_, sockaddr in resolve(host, port):
        try:
            return socket.create_connection((sockaddr[0], port), timeout, source_address)
        except OSError as error:
            last_error = error
    raise last_error or OSError(f"could not connect to {host}:{port}")
