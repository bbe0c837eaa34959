"""Outbound requests to addresses a user typed (webhooks): public destinations only, unless allowed.

A user-supplied URL is a way into the server's own network (SSRF): loopback services, the LAN,
link-local cloud metadata (169.254.169.254, fd00:ec2::254). :func:`check_url` refuses such
destinations when a URL is saved; :func:`resolve_public` is called again right before sending,
and the request then goes to the very address that was checked (:func:`pinned_request`), so a DNS
answer that changes between the check and the connection (DNS rebinding) cannot redirect it.
``webhook_allow_private_targets`` turns the refusal off for self-hosted setups whose receivers
live on the LAN.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Names that mean "this machine" or "this cloud" whatever DNS says.
_LOCAL_NAMES = ("localhost", "localhost.localdomain", "metadata.google.internal", "metadata", "instance-data")
_LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".home.arpa", ".lan")


class DestinationRefused(ValueError):
    """The URL is malformed or points at an address outgoing requests may not reach."""


def is_public(ip: IPAddress) -> bool:
    """True for globally routable unicast addresses (not loopback, private, link-local, CGNAT...)."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def parse_url(url: str) -> httpx.URL:
    """An http(s) URL with a host, or :class:`DestinationRefused` saying what is wrong."""
    if any(ch in url for ch in "\x00\r\n\t") or any(ord(ch) < 0x20 for ch in url):
        raise DestinationRefused("The URL must not contain control characters.")
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError, TypeError) as exc:
        raise DestinationRefused(f"The URL is not valid: {exc}") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise DestinationRefused("The URL must be an http:// or https:// address.")
    return parsed


def _literal_ip(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _refusal(host: str) -> DestinationRefused:
    return DestinationRefused(
        f"{host} is a loopback, private, link-local or metadata address; webhooks go to public addresses only "
        "(an administrator can allow private targets with AINF_WEBHOOK_ALLOW_PRIVATE_TARGETS)."
    )


def check_url(url: str, *, allow_private: bool) -> str:
    """Validate a URL when it is saved: shape, and a destination that is not obviously internal.

    Names are not resolved here (DNS can change before the first send, and the check at send
    time is the one that counts); IP literals and names that always mean a local machine are.
    """
    parsed = parse_url(url.strip())
    if not allow_private:
        host = parsed.host.lower().rstrip(".")
        ip = _literal_ip(host)
        if (ip is not None and not is_public(ip)) or host in _LOCAL_NAMES or host.endswith(_LOCAL_SUFFIXES):
            raise _refusal(host)
        if ip is None and _looks_numeric(host):
            raise DestinationRefused(f"{host} is not a usable host name.")
    return url.strip()


def _looks_numeric(host: str) -> bool:
    # "2130706433", "0x7f.1", "017700000001": forms some resolvers read as 127.0.0.1.
    return all(part.isdigit() or part.lower().startswith("0x") for part in host.split(".") if part)


def resolve_public(parsed: httpx.URL, *, allow_private: bool) -> IPAddress:
    """Resolve the URL's host now and return the address to connect to (all answers must pass)."""
    host = parsed.host
    literal = _literal_ip(host)
    if literal is not None:
        addresses: list[IPAddress] = [literal]
    else:
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise DestinationRefused(f"{host} does not resolve: {exc}") from None
        addresses = list(dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos))
        if not addresses:
            raise DestinationRefused(f"{host} does not resolve.")
    if not allow_private and any(not is_public(a) for a in addresses):
        # One internal answer is enough to refuse: the resolver could hand it out next time.
        raise _refusal(host)
    return addresses[0]


def pinned_request(parsed: httpx.URL, address: IPAddress) -> tuple[httpx.URL, dict[str, str], dict[str, Any]]:
    """(URL with the checked address as host, Host header, extensions) so the connection goes there.

    For https the original name stays the TLS server name (SNI and certificate check).
    """
    default_port = 443 if parsed.scheme == "https" else 80
    name = f"[{parsed.host}]" if ":" in parsed.host else parsed.host  # an IPv6 literal keeps its brackets
    host_header = name if parsed.port in (None, default_port) else f"{name}:{parsed.port}"
    url = parsed.copy_with(host=str(address))
    extensions: dict[str, Any] = {}
    if parsed.scheme == "https" and _literal_ip(parsed.host) is None:
        extensions["sni_hostname"] = parsed.host
    return url, {"Host": host_header}, extensions
