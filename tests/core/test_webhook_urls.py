"""Which addresses a webhook may go to, and the request aimed at the address checked (pinning)."""

from __future__ import annotations

import ipaddress

import pytest

from eventplane import webhook_urls
from eventplane.errors import ApiError


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.254", "private"),
        ("192.168.0.1", "private"),
        ("169.254.169.254", "link_local"),  # cloud metadata
        ("fe80::1", "link_local"),
        ("fd00::1", "unique_local"),
        ("fc00::1", "unique_local"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("100.64.0.1", "not_global"),  # carrier-grade NAT
        ("192.0.2.1", "not_global"),  # documentation
        ("240.0.0.1", "not_global"),  # reserved
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped: reaches the IPv4 address
        ("::ffff:169.254.169.254", "link_local"),
        ("2002:7f00:1::", "loopback"),  # 6to4 of 127.0.0.1
        ("64:ff9b::a00:1", "private"),  # NAT64 of 10.0.0.1
    ],
)
def test_internal_addresses_are_refused(address: str, reason: str) -> None:
    assert webhook_urls.refusal(ipaddress.ip_address(address)) == reason


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "172.32.0.1", "2001:4860:4860::8888", "64:ff9b::808:808"])
def test_public_addresses_pass(address: str) -> None:
    assert webhook_urls.refusal(ipaddress.ip_address(address)) is None


async def test_a_name_is_judged_by_what_it_resolves_to() -> None:
    with pytest.raises(ApiError) as caught:
        await webhook_urls.check_url("http://localhost:8080/hook", "webhooks[0].url")
    assert caught.value.code == "WEBHOOK_URL_FORBIDDEN"
    assert caught.value.details is not None and caught.value.details["reason"] == "loopback"
    assert "localhost resolves to" in caught.value.message
    # A name that does not resolve now is accepted: each delivery resolves and checks it again.
    await webhook_urls.check_url("https://no-such-host.invalid/hook", "webhooks[0].url")
    await webhook_urls.check_url("https://8.8.8.8/hook", "webhooks[0].url")


async def test_pin_aims_at_the_checked_address_with_the_urls_host() -> None:
    pinned = await webhook_urls.pin("https://8.8.4.4:8443/hook?x=1")
    assert str(pinned.url) == "https://8.8.4.4:8443/hook?x=1"
    assert (pinned.host_header, pinned.sni_hostname) == ("8.8.4.4:8443", "8.8.4.4")
    v6 = await webhook_urls.pin("http://[2001:4860:4860::8888]/hook")
    assert str(v6.url) == "http://[2001:4860:4860::8888]/hook" and v6.host_header == "[2001:4860:4860::8888]"
    with pytest.raises(webhook_urls.Forbidden) as caught:
        await webhook_urls.pin("http://localhost/hook")
    assert caught.value.reason == "loopback"
