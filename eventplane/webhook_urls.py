"""Where a webhook may be sent: never to an address inside the operator's network. A tenant admin chooses
the URL and the worker makes the request, so without this a destination could probe loopback services,
RFC 1918 hosts or a cloud's metadata endpoint (169.254.169.254) from inside.

A URL is checked twice: when a destination is saved (its literal address, or every address its name
resolves to; a name that does not resolve yet is accepted, as delivery checks again), and at every
delivery, where the name is resolved, each address checked, and the request sent to the checked address
(`pin`), so a name re-pointed after the first check (DNS rebinding) cannot reach inside either.
EVENTPLANE_WEBHOOK_ALLOW_PRIVATE=1 turns both off, for self-hosters whose receivers are internal.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass

import httpx

from eventplane.errors import ApiError, validation

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
RESOLVE_TIMEOUT = 2.0  # seconds a save or a delivery waits for DNS
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_RFC1918 = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
ALLOW_HINT = "an operator can allow internal receivers with EVENTPLANE_WEBHOOK_ALLOW_PRIVATE=1"


class Forbidden(Exception):
    """A destination whose address is not on the public internet."""

    def __init__(self, host: str, address: IPAddress, reason: str) -> None:
        self.host = host
        self.address = address
        self.reason = reason
        named = "" if host == str(address) else f" resolves to {address}, which"
        super().__init__(f"{host}{named} is {_WORDS[reason]}; webhooks go to public addresses only")


_WORDS = {
    "unspecified": "an unspecified address",
    "loopback": "a loopback address",
    "link_local": "a link-local address (169.254.0.0/16 holds cloud metadata services)",
    "private": "a private network address (RFC 1918)",
    "unique_local": "a unique-local IPv6 address (fc00::/7)",
    "multicast": "a multicast address",
    "not_global": "not a publicly routable address (shared, reserved or documentation range)",
}


def refusal(address: IPAddress) -> str | None:
    """Why a webhook may not be sent to this address (a key of the reasons above), or None when it may."""
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        return refusal(embedded)
    if address.is_unspecified:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link_local"
    if address.is_multicast:
        return "multicast"
    if isinstance(address, ipaddress.IPv4Address) and any(address in n for n in _RFC1918):
        return "private"
    if isinstance(address, ipaddress.IPv6Address) and address in ipaddress.ip_network("fc00::/7"):
        return "unique_local"
    return None if address.is_global else "not_global"


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for (mapped ::ffff:a.b.c.d, 6to4, NAT64), which is what it reaches."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to (a literal address is itself). Raises OSError or TimeoutError."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    infos = await asyncio.wait_for(
        loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP), RESOLVE_TIMEOUT
    )
    # The scope of a link-local IPv6 answer (fe80::1%eth0) is dropped: the address alone is refused anyway.
    return list(dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos))


def _check(host: str, addresses: list[IPAddress]) -> None:
    # Every address, not only the first: a name answering both a public and an internal address is refused.
    for address in addresses:
        reason = refusal(address)
        if reason is not None:
            raise Forbidden(host, address, reason)


async def check_url(url: str, field: str) -> None:
    """Refuse (400 WEBHOOK_URL_FORBIDDEN) a destination URL whose host is or resolves to an internal address."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise validation(f"{url!r} is not a valid URL: {exc}", field) from None
    host = parsed.host
    try:
        addresses = await resolve(parsed.raw_host.decode("ascii"), parsed.port or _default_port(parsed))
    except (OSError, TimeoutError, UnicodeError):
        return  # not resolvable now: every delivery resolves and checks it again
    try:
        _check(host, addresses)
    except Forbidden as refused:
        raise ApiError(
            400,
            "WEBHOOK_URL_FORBIDDEN",
            f"{refused}; {ALLOW_HINT}",
            {"field": field, "reason": refused.reason, "address": str(refused.address)},
        ) from None


@dataclass(frozen=True)
class Pinned:
    """A request to a checked address: the URL with that address, the Host header and TLS name of the URL's."""

    url: httpx.URL
    host_header: str
    sni_hostname: str


async def pin(url: str) -> Pinned:
    """Resolve the URL's host, check every address (Forbidden) and aim the request at the first one.
    Resolution errors (OSError, TimeoutError) are the caller's to report."""
    parsed = httpx.URL(url)
    raw_host = parsed.raw_host.decode("ascii")
    addresses = await resolve(raw_host, parsed.port or _default_port(parsed))
    _check(parsed.host, addresses)
    if not addresses:
        raise OSError(f"{parsed.host} has no address")
    return Pinned(parsed.copy_with(host=str(addresses[0])), parsed.netloc.decode("ascii"), raw_host.strip("[]"))


def _default_port(url: httpx.URL) -> int:
    return 443 if url.scheme == "https" else 80
