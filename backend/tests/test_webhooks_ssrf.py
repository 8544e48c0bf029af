"""Webhook targets: https only, and never a private, loopback, link-local, metadata or
multicast address, when the subscription is created and again at delivery time (DNS
rebinding). The resolver is replaced (integrations.webhook_http.resolve) to play the DNS; that
no connection is made is proven by a real receiver on loopback that counts what reaches it and
by recording every socket connection the sender opens."""

import ipaddress
import json
import socket

import pytest

from backend.integrations import webhook_http
from backend.models import WebhookDelivery, WebhookSubscription
from backend.services.webhooks import webhook_deliver
from backend.tests.factories import CreatorFactory, SessionFactory, UserFactory
from backend.tests.payments_support import book
from backend.tests.support import auth_client
from backend.tests.webhook_support import Receiver

pytestmark = pytest.mark.django_db

PUBLIC = "93.184.216.34"


@pytest.fixture
def dns(monkeypatch):
    """`dns["name"] = [addresses]`: what the resolver answers at this moment."""
    table: dict[str, list[str]] = {}

    def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return table[host]

    monkeypatch.setattr(webhook_http, "resolve", resolve)
    return table


@pytest.fixture
def connections(monkeypatch):
    """Every (address, port) the sender connects to."""
    opened: list[tuple[str, int]] = []
    real = socket.create_connection

    def create_connection(address, *args, **kwargs):
        opened.append(address)
        return real(address, *args, **kwargs)

    monkeypatch.setattr(webhook_http.socket, "create_connection", create_connection)
    return opened


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.stop()


def create(owner, url: str):
    return auth_client(owner).post(
        "/api/webhooks/", {"url": url, "events": ["booking.created"]}, format="json"
    )


REFUSED_LITERALS = [
    "https://127.0.0.1/hook",
    "https://127.1.2.3/hook",
    "https://10.0.0.5/hook",
    "https://172.16.4.4/hook",
    "https://192.168.1.10/hook",
    "https://169.254.169.254/latest/meta-data/",
    "https://100.64.0.1/hook",  # carrier-grade NAT
    "https://0.0.0.0/hook",
    "https://224.0.0.1/hook",  # multicast
    "https://[::1]/hook",
    "https://[fc00::1]/hook",
    "https://[fd12:3456::1]/hook",
    "https://[fe80::1]/hook",
    "https://[ff02::1]/hook",
    "https://[::ffff:127.0.0.1]/hook",  # IPv4-mapped loopback
    "https://[::ffff:169.254.169.254]/hook",
    "https://[2002:7f00:1::]/hook",  # 6to4 around 127.0.0.1
]


@pytest.mark.parametrize("url", REFUSED_LITERALS)
def test_private_addresses_are_refused_at_creation(url):
    creator = CreatorFactory.create()
    response = create(creator, url)
    assert response.status_code == 400
    assert response.json()["code"] == "webhook_url_not_allowed"
    assert not WebhookSubscription.objects.exists()


@pytest.mark.parametrize(
    "addresses",
    [["127.0.0.1"], ["10.1.2.3"], ["169.254.169.254"], ["::1"], ["fd00::5"], [PUBLIC, "10.0.0.1"]],
)
def test_a_name_resolving_to_a_private_address_is_refused_at_creation(dns, addresses):
    dns["hooks.example.com"] = addresses
    response = create(CreatorFactory.create(), "https://hooks.example.com/in")
    assert response.status_code == 400
    assert response.json()["code"] == "webhook_url_not_allowed"
    assert "non-public" in response.json()["detail"]
    assert not WebhookSubscription.objects.exists()


def test_http_and_unresolvable_names_are_refused_and_a_public_https_name_is_accepted(dns):
    creator = CreatorFactory.create()
    dns["hooks.example.com"] = [PUBLIC]
    for url in ["http://hooks.example.com/in", "https://nowhere.invalid/in", "ftp://x/y"]:
        response = create(creator, url)
        assert response.status_code == 400, url
        assert response.json()["code"] in ("webhook_url_not_allowed", "invalid")
    assert create(creator, "https://user:pw@hooks.example.com/in").status_code == 400
    assert not WebhookSubscription.objects.exists()
    response = create(creator, "https://hooks.example.com/in")
    assert response.status_code == 201
    # A URL changed later is checked too.
    dns["internal.example.com"] = ["10.0.0.7"]
    response = auth_client(creator).patch(
        f"/api/webhooks/{response.json()['id']}/",
        {"url": "https://internal.example.com/in"},
        format="json",
    )
    assert response.status_code == 400
    assert WebhookSubscription.objects.get().url == "https://hooks.example.com/in"


def test_a_name_that_resolves_to_loopback_at_delivery_time_is_refused_without_connecting(
    dns, connections, receiver, django_capture_on_commit_callbacks
):
    """DNS rebinding: public when checked at creation, 127.0.0.1 (where a receiver really
    listens) when the event is sent."""
    creator = CreatorFactory.create()
    dns["rebind.example.com"] = [PUBLIC]
    url = f"https://rebind.example.com:{receiver.port}/hooks"
    assert create(creator, url).status_code == 201
    dns["rebind.example.com"] = ["127.0.0.1"]
    with django_capture_on_commit_callbacks(execute=True):
        book(UserFactory.create(), SessionFactory.create(creator=creator))
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "failed"
    assert delivery.error.startswith("refused:")
    assert delivery.attempts == 1
    assert connections == []
    assert receiver.received == []


def test_one_private_answer_among_public_ones_refuses_the_delivery(dns, connections):
    creator = CreatorFactory.create()
    dns["multi.example.com"] = [PUBLIC]
    subscription = WebhookSubscription.objects.create(
        owner=creator, url="https://multi.example.com/in", events=["booking.created"], secret="s"
    )
    dns["multi.example.com"] = [PUBLIC, "169.254.169.254"]
    with pytest.raises(webhook_http.UnsafeTarget):
        webhook_http.post(subscription.url, body=b"{}", headers={})
    assert connections == []


def test_without_the_setting_even_http_to_loopback_is_refused_at_delivery(
    settings, connections, receiver, django_capture_on_commit_callbacks
):
    creator = CreatorFactory.create()
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    assert create(creator, receiver.url).status_code == 201
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    with django_capture_on_commit_callbacks(execute=True):
        book(UserFactory.create(), SessionFactory.create(creator=creator))
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.error) == ("failed", "refused: webhook URLs must use https")
    assert connections == []
    assert receiver.received == []


def test_the_connection_goes_to_the_checked_address_not_to_the_name_again(
    settings, dns, connections, receiver, django_capture_on_commit_callbacks
):
    """With private targets allowed (local use), a made-up name resolved by our resolver
    reaches the loopback receiver: the socket was opened to the address we resolved (the
    system resolver could not resolve the name), and the Host header still names it."""
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    dns["receiver.test"] = ["127.0.0.1"]
    creator = CreatorFactory.create()
    assert create(creator, f"http://receiver.test:{receiver.port}/hooks").status_code == 201
    with django_capture_on_commit_callbacks(execute=True):
        book(UserFactory.create(), SessionFactory.create(creator=creator))
    assert connections == [("127.0.0.1", receiver.port)]
    assert len(receiver.received) == 1
    assert receiver.received[0].headers["Host"] == f"receiver.test:{receiver.port}"
    assert json.loads(receiver.received[0].body)["type"] == "booking.created"


def test_a_delivery_whose_subscription_was_deleted_sends_nothing(
    settings, receiver, connections, django_capture_on_commit_callbacks
):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    creator = CreatorFactory.create()
    subscription_id = create(creator, receiver.url).json()["id"]
    book(UserFactory.create(), SessionFactory.create(creator=creator))  # not run: no capture
    delivery_id = WebhookDelivery.objects.get().pk
    assert auth_client(creator).delete(f"/api/webhooks/{subscription_id}/").status_code == 204
    webhook_deliver(delivery_id=delivery_id)
    assert connections == []
    assert receiver.received == []


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.216.34", True),
        ("2606:2800:220:1:248:1893:25c8:1946", True),
        ("8.8.8.8", True),
        ("127.0.0.1", False),
        ("10.255.255.255", False),
        ("172.31.0.1", False),
        ("192.168.0.1", False),
        ("169.254.169.254", False),
        ("100.100.100.200", False),
        ("198.18.0.1", False),
        ("240.0.0.1", False),
        ("255.255.255.255", False),
        ("239.1.1.1", False),
        ("::", False),
        ("::1", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("ff0e::1", False),
        ("::ffff:10.0.0.1", False),
        ("2001:0:4136:e378:8000:63bf:f5ff:fffe", False),  # Teredo around 10.0.0.1
    ],
)
def test_is_public_address(address, public):
    assert webhook_http.is_public_address(ipaddress.ip_address(address)) is public
