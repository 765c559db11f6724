"""Refuses URLs that would make us request internal addresses (server-side request forgery).

A URL named by a user or by remote data (a Label Studio task, a redirect) is fetched only when
every address its host resolves to is public: loopback, private (RFC 1918, ULA), link-local
(including the 169.254.169.254 cloud metadata address), shared (CGNAT), unspecified, multicast
and reserved addresses are refused, also when written as decimal, octal or hex IPv4 or wrapped
in IPv6 (IPv4-mapped, 6to4, NAT64). So are cloud metadata host names and ``localhost``.

What configuration names is trusted: an allowed host (a name or an IP literal) or origin
(``http://127.0.0.1:8080``: that scheme, host and port only) is not checked, and addresses
inside an allowed network pass. The check resolves the host the
way the HTTP client will (``getaddrinfo``), just before the request; a DNS server that answers
differently a moment later (rebinding) is outside what this check sees.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from visionloop.core.errors import ConfigError, ValidationError

__all__ = ["METADATA_HOSTS", "URLGuard", "UnsafeURLError", "address_problem", "resolve_host"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Sequence[str]]

# Names the cloud providers give their instance metadata services (their addresses are
# link-local and refused anyway; the names are refused even where DNS maps them elsewhere).
METADATA_HOSTS = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "metadata.azure.internal",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.tencentyun.com",
        "100-100-100-200.aliyun",
    }
)
_SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT, RFC 6598
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class UnsafeURLError(ValidationError):
    """A URL points at an internal address or host and was not fetched."""


def resolve_host(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to, as the HTTP client would connect (numeric forms
    such as ``2130706433`` or ``0x7f.1`` included, as the C library reads them)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def address_problem(address: IPAddress) -> str | None:
    """Why ``address`` must not be requested, or ``None`` when it is a public address."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            problem = address_problem(embedded)
            return f"{problem} (inside the IPv6 address {address})" if problem else None
    checks = (
        (address.is_unspecified, "the unspecified address"),
        (address.is_loopback, "a loopback address"),
        (address.is_link_local, "a link-local address (where cloud metadata services answer)"),
        (address.is_multicast, "a multicast address"),
        (address in _SHARED, "a shared (carrier-grade NAT) address"),
        (address.is_reserved, "a reserved address"),
        (address.is_private, "a private address"),
        (not address.is_global, "not a globally routable address"),
    )
    return next((reason for refused, reason in checks if refused), None)


def _origin(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or (443 if scheme == "https" else 80)
    return scheme, (parts.hostname or "").rstrip("."), port


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


@dataclass(frozen=True)
class URLGuard:
    """Checks URLs before they are fetched. ``allowed``: host names, IP addresses, networks
    (``10.0.0.0/8``) or origins (``http://127.0.0.1:8080``) that configuration trusts.
    ``hint``: how a user allows a refused host, appended to the message (e.g. ``"allow it with
    --image-host"``). ``resolve``: host and port to addresses (tests give a fixed table)."""

    allowed: Iterable[str] = ()
    hint: str = ""
    resolve: Resolver = resolve_host
    hosts: frozenset[str] = field(init=False)
    origins: frozenset[tuple[str, str, int]] = field(init=False)
    networks: tuple[IPNetwork, ...] = field(init=False)

    def __post_init__(self) -> None:
        hosts, origins, networks = set(), set(), []
        for entry in self.allowed:
            text = entry.strip().lower()
            if "://" in text:
                try:
                    origins.add(_origin(text))
                except ValueError as exc:  # an unclosed '[' or a port that is not a number
                    raise ConfigError(f"allowed host {entry!r} is not a valid origin: {exc}") from exc
                continue
            text = text.strip("[]").rstrip(".")
            try:
                networks.append(ipaddress.ip_network(text, strict=False))
            except ValueError:
                hosts.add(text)
        object.__setattr__(self, "hosts", frozenset(hosts))
        object.__setattr__(self, "origins", frozenset(origins))
        object.__setattr__(self, "networks", tuple(networks))

    def check(self, url: str) -> None:
        """Return quietly when ``url`` may be fetched; else raise :class:`UnsafeURLError` naming
        the URL (without its query, which may hold a signature) and the reason."""
        shown = url.split("?", 1)[0]
        try:
            origin = _origin(url)
        except ValueError as exc:
            raise self._refuse(shown, f"the URL's host or port is malformed ({exc})") from exc
        scheme, host, port = origin
        if scheme not in ("http", "https") or not host:
            raise self._refuse(shown, "only http(s) URLs with a host are fetched")
        if host in self.hosts or origin in self.origins:
            return
        if host in METADATA_HOSTS:
            raise self._refuse(shown, f"{host} is a cloud metadata service")
        if host == "localhost" or host.endswith((".localhost", ".internal")):
            raise self._refuse(shown, f"{host} names this machine or a private network")
        try:
            addresses = self.resolve(host, port)
        except (OSError, UnicodeError) as exc:
            raise self._refuse(shown, f"its host {host} does not resolve ({exc})") from exc
        if not addresses:
            raise self._refuse(shown, f"its host {host} resolves to no address")
        for text in addresses:
            address = ipaddress.ip_address(text.split("%", 1)[0])
            if any(address in network for network in self.networks):
                continue
            problem = address_problem(address)
            if problem is not None:
                named = host if host == str(address) else f"{host} resolves to {address}, which"
                raise self._refuse(shown, f"{named} is {problem}")

    def _refuse(self, shown: str, reason: str) -> UnsafeURLError:
        hint = f"; {self.hint}" if self.hint else ""
        return UnsafeURLError(f"{shown}: not fetched: {reason}{hint}")
