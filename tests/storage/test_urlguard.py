"""The URL guard refuses every spelling of an internal address, checks all the addresses a name
resolves to, and lets through exactly what configuration allows."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from hardening_tally import tally
from visionloop.core.errors import ConfigError, ValidationError
from visionloop.storage.urlguard import UnsafeURLError, URLGuard

# Resolved by the C library as the HTTP client would (numeric forms need no DNS).
INTERNAL = {
    "http://127.0.0.1/": "loopback",
    "http://127.1/": "loopback",
    "http://2130706433/": "loopback",
    "http://0x7f000001/": "loopback",
    "http://0x7f.0.0.1/": "loopback",
    "http://0177.0.0.1/": "loopback",
    "http://017700000001/": "loopback",
    "http://[::1]:8080/x": "loopback",
    "http://[::ffff:127.0.0.1]/": "loopback",
    "http://[::ffff:7f00:1]/": "loopback",
    "http://[2002:7f00:1::]/": "loopback",
    "http://169.254.169.254/latest/meta-data/": "link-local",
    "http://[::ffff:169.254.169.254]/": "link-local",
    "http://[64:ff9b::a9fe:a9fe]/": "link-local",
    "http://2852039166/": "link-local",
    "http://[fe80::1]/": "link-local",
    "http://10.0.0.1/": "private",
    "http://10.255.255.255:9000/": "private",
    "http://192.168.1.1/": "private",
    "http://172.16.0.1/": "private",
    "http://172.31.255.254/": "private",
    "http://[fc00::1]/": "private",
    "http://[fd12:3456::1]/": "private",
    "http://100.64.0.1/": "carrier-grade NAT",
    "http://100.127.255.254/": "carrier-grade NAT",
    "http://0.0.0.0/": "unspecified",
    "http://0/": "unspecified",
    "http://[::]/": "unspecified",
    "http://224.0.0.1/": "multicast",
    "http://[ff02::1]/": "multicast",
    "http://240.0.0.1/": "reserved",
    "http://255.255.255.255/": "reserved",
    "https://192.0.2.10/": "private",  # documentation range
    "http://localhost:8080/": "this machine",
    "http://LOCALHOST./": "this machine",
    "http://api.localhost/": "this machine",
    "http://metadata.google.internal/computeMetadata/v1/": "metadata",
    "http://metadata/": "metadata",
    "http://instance-data.ec2.internal/": "metadata",
    "http://db.corp.internal/": "private network",
}


@pytest.mark.parametrize(("url", "reason"), INTERNAL.items())
def test_internal_addresses_are_refused_in_every_spelling(url: str, reason: str) -> None:
    with pytest.raises(UnsafeURLError, match=reason) as caught:
        URLGuard(hint="allow it with --image-host").check(url)
    message = str(caught.value)
    assert message.startswith(url) and message.endswith("allow it with --image-host")
    assert isinstance(caught.value, ValidationError)
    tally("URLs refused by the fetch guard")


def _dns(table: dict[str, Sequence[str]]) -> URLGuard:
    return URLGuard(resolve=lambda host, port: table[host])


def test_every_resolved_address_is_checked() -> None:
    guard = _dns({"cdn.example": ["93.184.216.34", "10.1.2.3"], "ok.example": ["93.184.216.34", "2606::1"]})
    with pytest.raises(UnsafeURLError, match=r"cdn.example resolves to 10.1.2.3, which is a private"):
        guard.check("https://cdn.example/a.png")
    guard.check("https://ok.example/a.png")
    tally("URLs refused by the fetch guard")


def test_public_addresses_pass_and_the_query_stays_out_of_messages() -> None:
    for url in ("http://8.8.8.8/a.png", "https://[2001:4860:4860::8888]/a.png", "http://1.1.1.1:8080/"):
        URLGuard().check(url)
    with pytest.raises(UnsafeURLError) as caught:
        URLGuard().check("http://10.0.0.1/a.png?X-Amz-Signature=secret")
    assert "secret" not in str(caught.value)


@pytest.mark.parametrize(
    "url",
    ["file:///etc/passwd", "ftp://10.0.0.1/a", "http:///nohost", "http://host:99999/", "gopher://x/"],
)
def test_only_http_urls_with_a_host_and_port(url: str) -> None:
    with pytest.raises(UnsafeURLError, match="not fetched"):
        URLGuard().check(url)
    tally("URLs refused by the fetch guard")


def test_names_that_do_not_resolve_are_refused() -> None:
    def fail(host: str, port: int) -> list[str]:
        raise OSError("Name or service not known")

    with pytest.raises(UnsafeURLError, match="does not resolve"):
        URLGuard(resolve=fail).check("http://nowhere.example/")
    with pytest.raises(UnsafeURLError, match="no address"):
        _dns({"empty.example": []}).check("http://empty.example/")


def test_what_configuration_allows_passes() -> None:
    URLGuard(["localhost"]).check("http://localhost:8080/data/upload/a.png")
    URLGuard(["127.0.0.1"]).check("http://127.0.0.1:9/a.png")
    URLGuard(["[::1]"]).check("http://[::1]/a.png")
    URLGuard(["Images.Corp.Internal."]).check("http://images.corp.internal/a.png")
    URLGuard(["metadata.google.internal"]).check("http://metadata.google.internal/")  # if one insists
    networks = URLGuard(["10.0.0.0/8"], resolve=lambda host, port: ["10.9.8.7"])
    networks.check("http://nas.example/a.png")
    with pytest.raises(UnsafeURLError, match="loopback"):
        URLGuard(["10.0.0.0/8"]).check("http://127.0.0.1/")


def test_an_allowed_origin_allows_that_port_only() -> None:
    guard = URLGuard(["http://127.0.0.1:8080/"])
    guard.check("http://127.0.0.1:8080/data/upload/a.png")
    for other in ("http://127.0.0.1:6379/", "https://127.0.0.1:8080/", "http://127.0.0.1/"):
        with pytest.raises(UnsafeURLError, match="loopback"):
            guard.check(other)
    URLGuard(["https://ls.example"]).check("https://ls.example:443/a.png")


@pytest.mark.parametrize("entry", ["http://[::1/x", "http://host:port"])
def test_a_malformed_allowed_origin_is_a_config_error(entry: str) -> None:
    """Found by fuzzing: urlsplit's ValueError escaped while building the guard."""
    with pytest.raises(ConfigError, match="not a valid origin"):
        URLGuard([entry])
