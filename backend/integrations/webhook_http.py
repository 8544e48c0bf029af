"""The one way we send an HTTP request to a URL a user gave us (outgoing webhooks).

A webhook URL is chosen by a user, so a careless client could make our servers call into our
own network (server-side request forgery): the cloud metadata service at 169.254.169.254, a
database on 10.x, an admin port on 127.0.0.1. So, unless WEBHOOK_ALLOW_PRIVATE_TARGETS is on
(local development):

- only `https://` URLs, with no user name or password in them;
- the host name is resolved here, at the moment of sending, and *every* address it resolves to
  must be public (not private, loopback, link-local, multicast, reserved, shared or unspecified,
  also when wrapped as IPv4-mapped / 6to4 / Teredo IPv6); then the socket is connected to one of
  those checked addresses, not to the name again, so a DNS answer that changes between the
  check and the connection (DNS rebinding) cannot steer us anywhere else. TLS still verifies
  the certificate against the host name (SNI);
- redirects are never followed (a 3xx is just a failed delivery);
- every socket operation times out (WEBHOOK_TIMEOUT_SECONDS) and the response body is read up
  to RESPONSE_BODY_LIMIT bytes only.
"""

import http.client
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

from backend.integrations.lock_guard import assert_no_row_locks

RESPONSE_BODY_LIMIT = 1024
USER_AGENT = "SessionsMarketplace-Webhooks/1.0"


class UnsafeTarget(Exception):
    """The URL may not be called: wrong scheme, or an address we refuse. Never retried into."""


class SendFailed(Exception):
    """No HTTP answer: connection refused or reset, timeout, TLS failure. Worth retrying."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes  # at most RESPONSE_BODY_LIMIT bytes
    elapsed_ms: int


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (tests replace this to play a rebinding DNS)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    return None


def is_public_address(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None and not is_public_address(embedded):
            return False
    return address.is_global and not (
        address.is_multicast
        or address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_reserved
        or address.is_unspecified
    )


def allow_private_targets() -> bool:
    return bool(settings.WEBHOOK_ALLOW_PRIVATE_TARGETS)


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str  # path and query, as sent in the request line


def parse_target(url: str) -> Target:
    """Checks the URL's shape (not its addresses). Raises UnsafeTarget."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise UnsafeTarget(f"not a valid URL: {error}") from error
    allowed_schemes = ("https", "http") if allow_private_targets() else ("https",)
    if parts.scheme not in allowed_schemes:
        raise UnsafeTarget("webhook URLs must use https")
    if not parts.hostname:
        raise UnsafeTarget("the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise UnsafeTarget("the URL must not contain a user name or password")
    if port is None:
        port = 443 if parts.scheme == "https" else 80
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return Target(scheme=parts.scheme, host=parts.hostname, port=port, path=path)


def checked_addresses(target: Target) -> list[str]:
    """The addresses to connect to, every one checked. Raises UnsafeTarget (a refused address)
    or SendFailed (the name does not resolve)."""
    try:
        literal: IPAddress | None = ipaddress.ip_address(target.host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [str(literal)]
    else:
        try:
            addresses = resolve(target.host, target.port)
        except (OSError, UnicodeError) as error:
            # Perhaps a passing DNS failure: worth a retry at delivery time.
            raise SendFailed(f"the host {target.host!r} does not resolve") from error
    if not addresses:
        raise SendFailed(f"the host {target.host!r} does not resolve")
    if allow_private_targets():
        return addresses
    for text in addresses:
        # One refused address refuses the name: a rebinding DNS could hand out either.
        if not is_public_address(ipaddress.ip_address(text.split("%", 1)[0])):
            raise UnsafeTarget(f"the host {target.host!r} resolves to a non-public address")
    return addresses


def check_url(url: str) -> None:
    """Creation-time check of a webhook URL (the same checks run again at every delivery)."""
    checked_addresses(parse_target(url))


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, *, address: str, timeout: float):
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, *, address: str, timeout: float):
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        # The certificate is checked against the name the user gave, not the address.
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def post(url: str, *, body: bytes, headers: dict[str, str]) -> Answer:
    """POSTs `body` to `url` under the rules above. Raises UnsafeTarget or SendFailed."""
    assert_no_row_locks("webhook delivery")
    target = parse_target(url)
    addresses = checked_addresses(target)
    timeout = float(settings.WEBHOOK_TIMEOUT_SECONDS)
    connection_class = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
    last_error: Exception | None = None
    started = time.monotonic()
    for address in addresses:
        connection = connection_class(target.host, target.port, address=address, timeout=timeout)
        try:
            try:
                connection.connect()
            except OSError as error:
                # Nothing was sent: the next checked address may answer.
                last_error = error
                continue
            try:
                connection.request(
                    "POST",
                    target.path,
                    body=body,
                    headers={
                        "Content-Type": "application/json",
                        "User-Agent": USER_AGENT,
                        **headers,
                    },
                )
                response = connection.getresponse()
                answer_body = response.read(RESPONSE_BODY_LIMIT)
            except (OSError, http.client.HTTPException) as error:
                # Maybe received: not sent to another address (the retry has the same id).
                raise SendFailed(f"{type(error).__name__}: {error}") from error
            return Answer(
                status=response.status,
                body=answer_body,
                elapsed_ms=int((time.monotonic() - started) * 1000),
            )
        finally:
            connection.close()
    raise SendFailed(f"{type(last_error).__name__}: {last_error}")
