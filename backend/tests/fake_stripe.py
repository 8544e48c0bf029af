"""A small stateful stand-in for the Stripe API, served over HTTP on 127.0.0.1.

The project's real `stripe` client talks to it through STRIPE_API_BASE, so the tests exercise
the same requests, headers, form encoding, idempotency keys and error parsing as production.
It implements only what the payment service uses: PaymentIntents (create, retrieve; created
with a saved card, `confirm=true` and `off_session=true`, they charge it at once or answer
402 `card_declined` / `authentication_required` with the intent left open), Customers (create),
SetupIntents (create, retrieve, confirm, cancel: `save_card` plays Stripe.js saving a test
card), PaymentMethods (detach), Refunds (create), and for Connect: Accounts (create,
retrieve), Account Links (create), Transfers (create, with `source_transaction`) and Transfer
Reversals (create), with Stripe's idempotency
semantics (same key + same path -> the first answer again). `complete_onboarding` plays the
creator finishing Stripe's hosted onboarding; `dispute_for` builds the Dispute object of a
`charge.dispute.*` event. Tests drive the customer's side (`succeed`, `decline`, `cancel`),
inject failures (`fail_next`, `delay_next`, or an outage with `fail_until_cleared`) and build
signed webhook events (`signed_event`).

localstripe (requirements-dev) runs the happy path in test_payments_localstripe.py, but it
ignores Idempotency-Key and cannot be told to fail or stall, which are the cases that matter
most here; hence this stand-in.

It is also the fake-payments mode of local development (scripts/dev_server.py, `make run`
without STRIPE_SECRET_KEY): there it listens on a fixed loopback port, keeps its state in a
JSON file across restarts, lets anyone pay an intent the way Stripe.js does
(`POST /v1/payment_intents/<id>/confirm` with a test payment method such as `pm_card_visa` or
`pm_card_chargeDeclined`) and delivers signed webhooks to the API.
"""

import argparse
import base64
import json
import logging
import secrets
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import stripe

API_KEY = "sk_test_fake_0123456789"
PUBLISHABLE_KEY = "pk_test_fake_0123456789"
WEBHOOK_SECRET = "whsec_test_fake_0123456789"

logger = logging.getLogger("fake_stripe")

# Stripe's test payment methods (https://docs.stripe.com/testing#cards) that this stand-in knows:
# these succeed...
SUCCEEDING_PAYMENT_METHODS = frozenset(
    {"pm_card_visa", "pm_card_visa_debit", "pm_card_mastercard", "pm_card_amex", "pm_card_us"}
)
# ...and these are declined with the decline code Stripe gives them.
DECLINED_PAYMENT_METHODS = {
    "pm_card_chargeDeclined": "generic_decline",
    "pm_card_visa_chargeDeclined": "generic_decline",
    "pm_card_chargeDeclinedInsufficientFunds": "insufficient_funds",
    "pm_card_chargeDeclinedExpiredCard": "expired_card",
}
# Cards that save fine (a SetupIntent succeeds) but whose later off-session charges fail: the
# bank wants the customer (3-D Secure), or declines. Stripe's names for those test cards.
OFF_SESSION_FAILING_PAYMENT_METHODS = {
    "pm_card_authenticationRequired": ("authentication_required", None),
    "pm_card_chargeCustomerFail": ("card_declined", "generic_decline"),
}
# Webhook deliveries are retried (the API may not be up yet) this many times, doubling the wait.
WEBHOOK_ATTEMPTS = 8
WEBHOOK_FIRST_RETRY_SECONDS = 0.5


@dataclass
class RecordedRequest:
    method: str
    path: str
    params: dict[str, str]
    idempotency_key: str | None


@dataclass
class Failure:
    status: int = 500
    delay: float = 0.0
    error_type: str = "api_error"
    message: str = "Something went wrong on Stripe's end."
    code: str | None = None
    # Act on the request (create the object, remember the idempotent answer) and only then
    # fail or stall: the "Stripe did it, but we never heard back" case.
    after_processing: bool = False


@dataclass
class FakeStripeState:
    intents: dict[str, dict[str, Any]] = field(default_factory=dict)
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    account_links: list[dict[str, Any]] = field(default_factory=list)
    transfers: dict[str, dict[str, Any]] = field(default_factory=dict)
    customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    setup_intents: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Saved cards (pm_...), each made from a test card when a SetupIntent is confirmed;
    # `card` names the test card it behaves as.
    payment_methods: dict[str, dict[str, Any]] = field(default_factory=dict)
    idempotent: dict[tuple[str, str], tuple[int, dict[str, Any]]] = field(default_factory=dict)
    requests: list[RecordedRequest] = field(default_factory=list)
    failures: dict[str, list[Failure]] = field(default_factory=dict)  # by path prefix
    outages: dict[str, Failure] = field(default_factory=dict)  # every request, until cleared
    refund_status: str = "succeeded"


def _error(status: int, error_type: str, message: str, code: str | None = None):
    body: dict[str, Any] = {"error": {"type": error_type, "message": message}}
    if code:
        body["error"]["code"] = code
    return status, body


class FakeStripe:
    """`port` 0 picks a free one. `webhook_url`: where signed events are delivered (none: no
    deliveries, tests send them themselves). `state_file`: intents, refunds and idempotent
    answers are loaded from and saved to it, so a restarted stand-in still knows the intents
    the database refers to."""

    def __init__(
        self,
        *,
        port: int = 0,
        webhook_url: str | None = None,
        state_file: Path | None = None,
    ) -> None:
        self.state = FakeStripeState()
        self.lock = threading.Lock()
        self.webhook_url = webhook_url
        self.state_file = state_file
        self.deliveries: list[dict[str, Any]] = []  # events delivered, for tests
        if state_file is not None and state_file.exists():
            self._load(state_file)
        self.server = ThreadingHTTPServer(("127.0.0.1", port), self._handler_class())
        self.server.daemon_threads = True
        # A short poll interval: shutdown() waits for it, once per test.
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> "FakeStripe":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    # --- what tests look at -------------------------------------------------------------------

    def requests_to(self, method: str, path: str) -> list[RecordedRequest]:
        with self.lock:
            return [r for r in self.state.requests if r.method == method and r.path == path]

    def intent(self, intent_id: str) -> dict[str, Any]:
        with self.lock:
            return json.loads(json.dumps(self.state.intents[intent_id]))

    @property
    def intent_count(self) -> int:
        return len(self.state.intents)

    @property
    def refund_count(self) -> int:
        return len(self.state.refunds)

    @property
    def account_count(self) -> int:
        return len(self.state.accounts)

    @property
    def transfer_count(self) -> int:
        return len(self.state.transfers)

    def account(self, account_id: str) -> dict[str, Any]:
        with self.lock:
            return json.loads(json.dumps(self.state.accounts[account_id]))

    def transfer(self, transfer_id: str) -> dict[str, Any]:
        with self.lock:
            return json.loads(json.dumps(self.state.transfers[transfer_id]))

    def transfers_to(self, account_id: str) -> list[dict[str, Any]]:
        with self.lock:
            found = [t for t in self.state.transfers.values() if t["destination"] == account_id]
            return json.loads(json.dumps(found))

    # --- what tests do ------------------------------------------------------------------------

    def fail_next(self, path_prefix: str, times: int = 1, **failure: Any) -> None:
        with self.lock:
            queue = self.state.failures.setdefault(path_prefix, [])
            queue.extend(Failure(**failure) for _ in range(times))

    def fail_until_cleared(self, path_prefix: str, **failure: Any) -> None:
        """Every request under `path_prefix` fails (or stalls) until `clear_outages()`."""
        with self.lock:
            self.state.outages[path_prefix] = Failure(**failure)

    def clear_outages(self) -> None:
        with self.lock:
            self.state.outages.clear()

    def delay_next(self, path_prefix: str, seconds: float, *, after_processing: bool) -> None:
        self.fail_next(path_prefix, status=0, delay=seconds, after_processing=after_processing)

    def set_refund_status(self, status: str) -> None:
        self.state.refund_status = status

    def succeed(self, intent_id: str) -> dict[str, Any]:
        """The customer pays: Stripe.js confirms the intent and the charge succeeds."""
        with self.lock:
            intent = self.state.intents[intent_id]
            intent["status"] = "succeeded"
            intent["last_payment_error"] = None
            intent["latest_charge"] = intent.get("latest_charge") or f"ch_{secrets.token_hex(8)}"
            return json.loads(json.dumps(intent))

    def decline(self, intent_id: str) -> dict[str, Any]:
        with self.lock:
            intent = self.state.intents[intent_id]
            intent["status"] = "requires_payment_method"
            intent["last_payment_error"] = {
                "type": "card_error",
                "code": "card_declined",
                "message": "Your card was declined.",
            }
            return json.loads(json.dumps(intent))

    def cancel(self, intent_id: str) -> dict[str, Any]:
        with self.lock:
            intent = self.state.intents[intent_id]
            intent["status"] = "canceled"
            return json.loads(json.dumps(intent))

    def setup_intent(self, setup_intent_id: str) -> dict[str, Any]:
        with self.lock:
            return dict(self.state.setup_intents[setup_intent_id])

    def payment_method(self, payment_method_id: str) -> dict[str, Any]:
        with self.lock:
            return dict(self.state.payment_methods[payment_method_id])

    def off_session_charges(self) -> list[dict[str, Any]]:
        """The PaymentIntents created with a saved card and `off_session=true` (each an attempt
        to charge; a replay of an idempotency key is not a new one)."""
        with self.lock:
            return [i for i in self.state.intents.values() if i.get("off_session")]

    def save_card(self, setup_intent_id: str, card: str = "pm_card_visa") -> dict[str, Any]:
        """The customer completes the SetupIntent with a test card, as Stripe.js would."""
        with self.lock:
            status, body = self._confirm_setup_intent(setup_intent_id, {"payment_method": card})
        if status != 200:
            raise AssertionError(f"save_card failed: {body}")
        return body

    def add_account(self) -> dict[str, Any]:
        """An Express account made outside the API under test (a test's starting point)."""
        with self.lock:
            return json.loads(json.dumps(self._create_account({"type": "express"})[1]))

    def complete_onboarding(
        self, account_id: str, *, charges_enabled: bool = True, payouts_enabled: bool = True
    ) -> dict[str, Any]:
        """The creator finishes Stripe's hosted onboarding: the account as `account.updated`
        then carries it."""
        with self.lock:
            account = self.state.accounts[account_id]
            account["details_submitted"] = True
            account["charges_enabled"] = charges_enabled
            account["payouts_enabled"] = payouts_enabled
            due = [] if charges_enabled and payouts_enabled else ["external_account"]
            account["requirements"] = {
                **account["requirements"],
                "currently_due": due,
                "eventually_due": due,
                "disabled_reason": None if not due else "requirements.past_due",
            }
            self._save()
            return json.loads(json.dumps(account))

    def dispute_for(
        self, intent_id: str, *, status: str = "needs_response", amount: int | None = None
    ) -> dict[str, Any]:
        """The Dispute object of `charge.dispute.created` / `.closed` (status won or lost)."""
        intent = self.intent(intent_id)
        return {
            "id": f"du_{intent_id[3:]}",
            "object": "dispute",
            "amount": intent["amount"] if amount is None else amount,
            "currency": intent["currency"],
            "charge": intent["latest_charge"],
            "payment_intent": intent_id,
            "reason": "fraudulent",
            "status": status,
            "livemode": False,
            "metadata": {},
        }

    def charge_for(self, intent_id: str, *, refunded: bool = True) -> dict[str, Any]:
        """The Charge object Stripe sends with charge.refunded."""
        intent = self.intent(intent_id)
        return {
            "id": intent["latest_charge"] or f"ch_{secrets.token_hex(8)}",
            "object": "charge",
            "amount": intent["amount"],
            "amount_refunded": intent["amount"] if refunded else intent["amount"] // 2,
            "currency": intent["currency"],
            "payment_intent": intent_id,
            "refunded": refunded,
            "metadata": {},
        }

    @staticmethod
    def signed_event(
        event_type: str,
        obj: dict[str, Any],
        *,
        event_id: str | None = None,
        secret: str = WEBHOOK_SECRET,
        timestamp: int | None = None,
        created: int | None = None,
    ) -> tuple[bytes, str]:
        """A webhook body and its Stripe-Signature header, signed as Stripe signs them.
        `created`: when Stripe made the event (default now), which orders events."""
        event = {
            "id": event_id or f"evt_{secrets.token_hex(12)}",
            "object": "event",
            "api_version": "2026-10-28.endive",
            "created": int(time.time()) if created is None else created,
            "type": event_type,
            "livemode": False,
            "data": {"object": obj},
        }
        payload = json.dumps(event)
        header = stripe.WebhookSignature.generate_signature_header(
            payload, secret, timestamp=timestamp
        )
        return payload.encode(), header

    # --- fake-payments mode: persistence and webhook delivery ---------------------------------

    def _load(self, path: Path) -> None:
        saved = json.loads(path.read_text())
        self.state.intents = saved.get("intents", {})
        self.state.refunds = saved.get("refunds", {})
        self.state.accounts = saved.get("accounts", {})
        self.state.transfers = saved.get("transfers", {})
        self.state.customers = saved.get("customers", {})
        self.state.setup_intents = saved.get("setup_intents", {})
        self.state.payment_methods = saved.get("payment_methods", {})
        self.state.idempotent = {
            (key, route): (status, body) for key, route, status, body in saved.get("idempotent", [])
        }

    def _save(self) -> None:
        """Caller holds self.lock."""
        if self.state_file is None:
            return
        saved = {
            "intents": self.state.intents,
            "refunds": self.state.refunds,
            "accounts": self.state.accounts,
            "transfers": self.state.transfers,
            "customers": self.state.customers,
            "setup_intents": self.state.setup_intents,
            "payment_methods": self.state.payment_methods,
            "idempotent": [
                [key, route, status, body]
                for (key, route), (status, body) in self.state.idempotent.items()
            ],
        }
        temporary = self.state_file.with_suffix(".tmp")
        temporary.write_text(json.dumps(saved))
        temporary.replace(self.state_file)

    def _emit(self, event_type: str, obj: dict[str, Any]) -> None:
        """Delivers a signed event in the background, as Stripe does after answering."""
        if not self.webhook_url:
            return
        payload, header = self.signed_event(event_type, json.loads(json.dumps(obj)))
        threading.Thread(
            target=self._deliver, args=(event_type, payload, header), daemon=True
        ).start()

    def _deliver(self, event_type: str, payload: bytes, header: str) -> None:
        wait = WEBHOOK_FIRST_RETRY_SECONDS
        for _attempt in range(WEBHOOK_ATTEMPTS):
            request = urllib.request.Request(  # noqa: S310 (a loopback URL we were given)
                str(self.webhook_url),
                data=payload,
                headers={"Content-Type": "application/json", "Stripe-Signature": header},
            )
            try:
                with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                    status = response.status
            except urllib.error.HTTPError as error:
                status = error.code
            except OSError:
                status = 0  # not listening yet (make run seeds before it serves)
            if 200 <= status < 300:
                with self.lock:
                    self.deliveries.append({"type": event_type, "status": status})
                return
            time.sleep(wait)
            wait *= 2
        logger.warning("webhook %s not delivered to %s", event_type, self.webhook_url)

    # --- the HTTP side ------------------------------------------------------------------------

    def _take_failure(self, path: str) -> Failure | None:
        with self.lock:
            for prefix, outage in self.state.outages.items():
                if path.startswith(prefix):
                    return outage
            for prefix, queue in self.state.failures.items():
                if path.startswith(prefix) and queue:
                    return queue.pop(0)
        return None

    @staticmethod
    def _api_key(headers) -> str | None:
        authorization = headers.get("Authorization") or ""
        if authorization.startswith("Bearer "):
            return authorization[len("Bearer ") :]
        if authorization.startswith("Basic "):  # curl -u sk_test_...:
            try:
                decoded = base64.b64decode(authorization[len("Basic ") :]).decode()
            except ValueError:
                return None
            return decoded.split(":", 1)[0]
        return None

    def _authorized(self, method: str, path: str, params: dict[str, str], headers) -> bool:
        key = self._api_key(headers)
        if key == API_KEY:
            return True
        # Stripe.js confirms with the publishable key and the intent's client secret.
        if key == PUBLISHABLE_KEY and method == "POST" and path.endswith("/confirm"):
            objects = (
                self.state.setup_intents
                if path.startswith("/v1/setup_intents/")
                else self.state.intents
            )
            intent = objects.get(path.split("/")[3]) or {}
            return bool(params.get("client_secret")) and (
                params.get("client_secret") == intent.get("client_secret")
            )
        return False

    def _handle(self, method: str, path: str, params: dict[str, str], headers) -> tuple[int, Any]:
        with self.lock:
            authorized = self._authorized(method, path, params, headers)
        if not authorized:
            return _error(401, "invalid_request_error", "Invalid API Key provided.")
        key = headers.get("Idempotency-Key")
        with self.lock:
            self.state.requests.append(RecordedRequest(method, path, params, key))
            if method == "POST" and key and (key, path) in self.state.idempotent:
                return self.state.idempotent[(key, path)]
            result = self._route(method, path, params)
            if method == "POST" and key and result[0] < 500:
                self.state.idempotent[(key, path)] = result
            if method == "POST":
                self._save()
            return result

    def _route(self, method: str, path: str, params: dict[str, str]) -> tuple[int, Any]:
        if method == "POST" and path == "/v1/payment_intents":
            return self._create_intent(params)
        if (
            method == "POST"
            and path.startswith("/v1/payment_intents/")
            and path.endswith("/cancel")
        ):
            return self._cancel_intent(path.split("/")[3])
        if (
            method == "POST"
            and path.startswith("/v1/payment_intents/")
            and path.endswith("/confirm")
        ):
            return self._confirm_intent(path.split("/")[3], params)
        if method == "GET" and path.startswith("/v1/payment_intents/"):
            intent = self.state.intents.get(path.rsplit("/", 1)[1])
            if intent is None:
                return _error(
                    404, "invalid_request_error", "No such payment_intent.", "resource_missing"
                )
            return 200, intent
        if method == "POST" and path == "/v1/refunds":
            return self._create_refund(params)
        if method == "POST" and path == "/v1/customers":
            customer_id = f"cus_{secrets.token_hex(8)}"
            customer = {
                "id": customer_id,
                "object": "customer",
                "metadata": self._metadata(params),
                "livemode": False,
            }
            self.state.customers[customer_id] = customer
            return 200, customer
        if method == "POST" and path == "/v1/setup_intents":
            return self._create_setup_intent(params)
        if method == "POST" and path.startswith("/v1/setup_intents/"):
            setup_id, _, action = path[len("/v1/setup_intents/") :].partition("/")
            if action == "confirm":
                return self._confirm_setup_intent(setup_id, params)
            if action == "cancel":
                return self._cancel_setup_intent(setup_id)
        if method == "GET" and path.startswith("/v1/setup_intents/"):
            setup = self.state.setup_intents.get(path.split("/")[3])
            if setup is None:
                return _error(
                    404, "invalid_request_error", "No such setupintent.", "resource_missing"
                )
            return 200, setup
        if (
            method == "POST"
            and path.startswith("/v1/payment_methods/")
            and path.endswith("/detach")
        ):
            return self._detach_payment_method(path.split("/")[3])
        if method == "POST" and path == "/v1/accounts":
            return self._create_account(params)
        if method == "GET" and path.startswith("/v1/accounts/"):
            account = self.state.accounts.get(path.split("/")[3])
            if account is None:
                return _error(404, "invalid_request_error", "No such account.", "resource_missing")
            return 200, account
        if method == "POST" and path == "/v1/account_links":
            return self._create_account_link(params)
        if method == "POST" and path == "/v1/transfers":
            return self._create_transfer(params)
        if method == "POST" and path.startswith("/v1/transfers/") and path.endswith("/reversals"):
            return self._create_reversal(path.split("/")[3], params)
        if method == "GET" and path.startswith("/v1/transfers/"):
            transfer = self.state.transfers.get(path.split("/")[3])
            if transfer is None:
                return _error(404, "invalid_request_error", "No such transfer.", "resource_missing")
            return 200, transfer
        return _error(404, "invalid_request_error", f"Unrecognized request URL ({method} {path}).")

    def _create_intent(self, params: dict[str, str]) -> tuple[int, Any]:
        try:
            amount = int(params["amount"])
            currency = params["currency"]
        except (KeyError, ValueError):
            return _error(400, "invalid_request_error", "Missing required param: amount.")
        if currency != currency.lower() or len(currency) != 3:
            return _error(400, "invalid_request_error", f"Invalid currency: {currency}.")
        if amount < 50:
            message = "Amount must be at least 50 cents."
            return _error(400, "invalid_request_error", message, "amount_too_small")
        if params.get("confirm") == "true" and params.get("off_session") == "true":
            return self._charge_saved_card(params, amount, currency)
        intent_id = f"pi_{secrets.token_hex(12)}"
        intent = {
            "id": intent_id,
            "object": "payment_intent",
            "amount": amount,
            "currency": currency,
            "status": "requires_payment_method",
            "client_secret": f"{intent_id}_secret_{secrets.token_hex(8)}",
            "description": params.get("description"),
            "metadata": {
                name[len("metadata[") : -1]: value
                for name, value in params.items()
                if name.startswith("metadata[")
            },
            "last_payment_error": None,
            "latest_charge": None,
            "livemode": False,
        }
        self.state.intents[intent_id] = intent
        return 200, intent

    def _create_setup_intent(self, params: dict[str, str]) -> tuple[int, Any]:
        customer = params.get("customer")
        if customer and customer not in self.state.customers:
            return _error(400, "invalid_request_error", f"No such customer: '{customer}'")
        setup_id = f"seti_{secrets.token_hex(12)}"
        setup = {
            "id": setup_id,
            "object": "setup_intent",
            "status": "requires_payment_method",
            "client_secret": f"{setup_id}_secret_{secrets.token_hex(8)}",
            "customer": customer,
            "usage": params.get("usage", "off_session"),
            "payment_method": None,
            "metadata": self._metadata(params),
            "last_setup_error": None,
            "livemode": False,
        }
        self.state.setup_intents[setup_id] = setup
        return 200, setup

    def _confirm_setup_intent(self, setup_id: str, params: dict[str, str]) -> tuple[int, Any]:
        """The customer saves a test card: a new pm_... attached to the intent's customer."""
        setup = self.state.setup_intents.get(setup_id)
        if setup is None:
            return _error(404, "invalid_request_error", "No such setupintent.", "resource_missing")
        if setup["status"] in ("succeeded", "canceled"):
            message = f"This SetupIntent's status is {setup['status']}; it cannot be confirmed."
            return _error(400, "invalid_request_error", message, "setup_intent_unexpected_state")
        card = params.get("payment_method", "")
        if card in DECLINED_PAYMENT_METHODS:
            error = {
                "type": "card_error",
                "code": "card_declined",
                "decline_code": DECLINED_PAYMENT_METHODS[card],
                "message": "Your card was declined.",
            }
            setup["last_setup_error"] = error
            self._emit("setup_intent.setup_failed", setup)
            return 402, {"error": {**error, "setup_intent": setup}}
        if (
            card not in SUCCEEDING_PAYMENT_METHODS
            and card not in OFF_SESSION_FAILING_PAYMENT_METHODS
        ):
            return _error(400, "invalid_request_error", f"No such PaymentMethod: '{card}'")
        payment_method_id = f"pm_{secrets.token_hex(12)}"
        self.state.payment_methods[payment_method_id] = {
            "id": payment_method_id,
            "object": "payment_method",
            "type": "card",
            "customer": setup["customer"],
            "card": card,
        }
        setup["status"] = "succeeded"
        setup["payment_method"] = payment_method_id
        setup["last_setup_error"] = None
        self._emit("setup_intent.succeeded", setup)
        return 200, setup

    def _cancel_setup_intent(self, setup_id: str) -> tuple[int, Any]:
        setup = self.state.setup_intents.get(setup_id)
        if setup is None:
            return _error(404, "invalid_request_error", "No such setupintent.", "resource_missing")
        if setup["status"] in ("succeeded", "canceled"):
            message = f"This SetupIntent's status is {setup['status']}; it cannot be canceled."
            return _error(400, "invalid_request_error", message, "setup_intent_unexpected_state")
        setup["status"] = "canceled"
        return 200, setup

    def _detach_payment_method(self, payment_method_id: str) -> tuple[int, Any]:
        method = self.state.payment_methods.get(payment_method_id)
        if method is None:
            return _error(
                404, "invalid_request_error", "No such PaymentMethod.", "resource_missing"
            )
        if method["customer"] is None:
            message = "The payment method you provided is not attached to a customer."
            return _error(400, "invalid_request_error", message, "payment_method_unexpected_state")
        method["customer"] = None
        return 200, {k: v for k, v in method.items() if k != "card"}

    def _charge_saved_card(self, params: dict[str, str], amount: int, currency: str):
        """`confirm=true&off_session=true` with a saved card: Stripe charges it at once, or
        answers 402 with the intent left open (declined, or authentication_required)."""
        method = self.state.payment_methods.get(params.get("payment_method", ""))
        customer = params.get("customer")
        if method is None or not customer or method["customer"] != customer:
            message = "The provided PaymentMethod is not attached to this customer."
            return _error(400, "invalid_request_error", message, "resource_missing")
        intent_id = f"pi_{secrets.token_hex(12)}"
        intent: dict[str, Any] = {
            "id": intent_id,
            "object": "payment_intent",
            "amount": amount,
            "currency": currency,
            "status": "succeeded",
            "client_secret": f"{intent_id}_secret_{secrets.token_hex(8)}",
            "customer": customer,
            "payment_method": method["id"],
            "off_session": True,
            "metadata": self._metadata(params),
            "last_payment_error": None,
            "latest_charge": None,
            "livemode": False,
        }
        if params.get("transfer_group"):
            intent["transfer_group"] = params["transfer_group"]
        self.state.intents[intent_id] = intent
        failing = OFF_SESSION_FAILING_PAYMENT_METHODS.get(method["card"])
        if failing is None:
            intent["latest_charge"] = f"ch_{secrets.token_hex(8)}"
            self._emit("payment_intent.succeeded", intent)
            return 200, intent
        code, decline_code = failing
        error: dict[str, Any] = {
            "type": "card_error",
            "code": code,
            "message": "Your card was declined."
            if code == "card_declined"
            else "This payment requires authentication by the customer.",
            "payment_method": {"id": method["id"], "object": "payment_method"},
        }
        if decline_code:
            error["decline_code"] = decline_code
        # Off-session, both leave the intent waiting for a payment method: the customer comes
        # back on-session to confirm it (with 3-D Secure) or to use another card.
        intent["status"] = "requires_payment_method"
        intent["last_payment_error"] = error
        self._emit("payment_intent.payment_failed", intent)
        return 402, {"error": {**error, "payment_intent": intent}}

    def _cancel_intent(self, intent_id: str) -> tuple[int, Any]:
        intent = self.state.intents.get(intent_id)
        if intent is None:
            return _error(404, "invalid_request_error", "No such payment_intent.")
        if intent["status"] in ("succeeded", "canceled"):
            message = f"This PaymentIntent's status is {intent['status']}; it cannot be canceled."
            return _error(400, "invalid_request_error", message, "payment_intent_unexpected_state")
        intent["status"] = "canceled"
        self._emit("payment_intent.canceled", intent)
        return 200, intent

    def _confirm_intent(self, intent_id: str, params: dict[str, str]) -> tuple[int, Any]:
        """The customer pays with a test payment method, as Stripe.js would confirm."""
        intent = self.state.intents.get(intent_id)
        if intent is None:
            return _error(
                404, "invalid_request_error", "No such payment_intent.", "resource_missing"
            )
        if intent["status"] in ("succeeded", "canceled"):
            message = f"This PaymentIntent's status is {intent['status']}; it cannot be confirmed."
            return _error(400, "invalid_request_error", message, "payment_intent_unexpected_state")
        payment_method = params.get("payment_method", "")
        if payment_method in SUCCEEDING_PAYMENT_METHODS:
            intent["status"] = "succeeded"
            intent["payment_method"] = payment_method
            intent["last_payment_error"] = None
            intent["latest_charge"] = intent.get("latest_charge") or f"ch_{secrets.token_hex(8)}"
            self._emit("payment_intent.succeeded", intent)
            return 200, intent
        if payment_method in DECLINED_PAYMENT_METHODS:
            error = {
                "type": "card_error",
                "code": "card_declined",
                "decline_code": DECLINED_PAYMENT_METHODS[payment_method],
                "message": "Your card was declined.",
            }
            intent["status"] = "requires_payment_method"
            intent["last_payment_error"] = error
            self._emit("payment_intent.payment_failed", intent)
            return 402, {"error": {**error, "payment_intent": intent}}
        known = sorted(SUCCEEDING_PAYMENT_METHODS | set(DECLINED_PAYMENT_METHODS))
        message = f"No such PaymentMethod: '{payment_method}'. This stand-in knows {known}."
        return _error(400, "invalid_request_error", message, "resource_missing")

    def refunded_charge(self, intent_id: str) -> dict[str, Any]:
        """The Charge object as Stripe sends it with charge.refunded after this stand-in's
        refunds: `amount_refunded` their sum, `refunded` once all is back, the refunds listed."""
        with self.lock:
            return self._refunded_charge_unlocked(intent_id)

    def _refunded_charge_unlocked(self, intent_id: str) -> dict[str, Any]:
        """Caller holds self.lock."""
        intent = self.state.intents[intent_id]
        refunds = [
            refund
            for refund in self.state.refunds.values()
            if refund["payment_intent"] == intent_id and refund["status"] == "succeeded"
        ]
        refunded = sum(refund["amount"] for refund in refunds)
        charge = {
            "id": intent["latest_charge"],
            "object": "charge",
            "amount": intent["amount"],
            "amount_refunded": refunded,
            "currency": intent["currency"],
            "payment_intent": intent["id"],
            "refunded": refunded >= intent["amount"],
            "metadata": intent["metadata"],
            "refunds": {"object": "list", "data": refunds},
        }
        return json.loads(json.dumps(charge))

    def _create_refund(self, params: dict[str, str]) -> tuple[int, Any]:
        intent = self.state.intents.get(params.get("payment_intent", ""))
        if intent is None:
            return _error(404, "invalid_request_error", "No such payment_intent.")
        if intent["status"] != "succeeded":
            return _error(
                400,
                "invalid_request_error",
                "This PaymentIntent does not have a successful charge to refund.",
            )
        already = sum(
            refund["amount"]
            for refund in self.state.refunds.values()
            if refund["payment_intent"] == intent["id"]
            and refund["status"] not in ("failed", "canceled")
        )
        remaining = intent["amount"] - already
        # Stripe's `amount`: a partial refund in minor units; without it, whatever is left.
        amount = int(params["amount"]) if "amount" in params else remaining
        if remaining <= 0:
            return _error(
                400,
                "invalid_request_error",
                f"Charge {intent['latest_charge']} has already been refunded.",
                "charge_already_refunded",
            )
        if not 0 < amount <= remaining:
            return _error(
                400,
                "invalid_request_error",
                f"Refund amount ({amount}) is greater than unrefunded amount on charge "
                f"({remaining}).",
                "amount_too_large",
            )
        refund_id = f"re_{secrets.token_hex(12)}"
        refund = {
            "id": refund_id,
            "object": "refund",
            "amount": amount,
            "currency": intent["currency"],
            "payment_intent": intent["id"],
            "charge": intent["latest_charge"],
            "status": self.state.refund_status,
            "metadata": {
                name[len("metadata[") : -1]: value
                for name, value in params.items()
                if name.startswith("metadata[")
            },
        }
        self.state.refunds[refund_id] = refund
        if refund["status"] == "succeeded" and self.webhook_url:
            self._emit("charge.refunded", self._refunded_charge_unlocked(intent["id"]))
        return 200, refund

    # --- Connect ------------------------------------------------------------------------------

    @staticmethod
    def _metadata(params: dict[str, str]) -> dict[str, str]:
        return {
            name[len("metadata[") : -1]: value
            for name, value in params.items()
            if name.startswith("metadata[")
        }

    def _create_account(self, params: dict[str, str]) -> tuple[int, Any]:
        if params.get("type") not in ("express", "standard", "custom"):
            return _error(400, "invalid_request_error", "Missing required param: type.")
        account_id = f"acct_{secrets.token_hex(8)}"
        due = ["business_type", "external_account", "tos_acceptance.date"]
        account = {
            "id": account_id,
            "object": "account",
            "type": params["type"],
            "email": params.get("email"),
            "country": params.get("country", "US"),
            "charges_enabled": False,
            "payouts_enabled": False,
            "details_submitted": False,
            "capabilities": {
                name[len("capabilities[") : -len("][requested]")]: "inactive"
                for name in params
                if name.startswith("capabilities[")
            },
            "requirements": {
                "currently_due": due,
                "eventually_due": due,
                "past_due": [],
                "disabled_reason": "requirements.past_due",
            },
            "metadata": self._metadata(params),
            "created": int(time.time()),
        }
        self.state.accounts[account_id] = account
        return 200, account

    def _create_account_link(self, params: dict[str, str]) -> tuple[int, Any]:
        account_id = params.get("account", "")
        if account_id not in self.state.accounts:
            return _error(400, "invalid_request_error", f"No such account: '{account_id}'")
        for name in ("refresh_url", "return_url", "type"):
            if not params.get(name):
                return _error(400, "invalid_request_error", f"Missing required param: {name}.")
        created = int(time.time())
        link = {
            "object": "account_link",
            "created": created,
            "expires_at": created + 300,
            "url": f"{self.base_url}/connect/setup/{account_id}/{secrets.token_hex(8)}",
        }
        self.state.account_links.append({**link, **params})
        return 200, link

    def _create_transfer(self, params: dict[str, str]) -> tuple[int, Any]:
        try:
            amount = int(params["amount"])
            currency = params["currency"]
            destination = params["destination"]
        except (KeyError, ValueError):
            return _error(400, "invalid_request_error", "Missing required param: amount.")
        if destination not in self.state.accounts:
            return _error(400, "invalid_request_error", f"No such destination: '{destination}'")
        if amount <= 0:
            return _error(400, "invalid_request_error", "Amount must be greater than 0.")
        source = params.get("source_transaction")
        if source is not None:
            charge_intent = next(
                (i for i in self.state.intents.values() if i.get("latest_charge") == source), None
            )
            if charge_intent is None or charge_intent["status"] != "succeeded":
                return _error(400, "invalid_request_error", f"No such charge: '{source}'")
            already = sum(
                t["amount"] for t in self.state.transfers.values()
                if t["source_transaction"] == source
            )  # fmt: skip
            if already + amount > charge_intent["amount"]:
                message = "Transfers from this charge would exceed the charge's amount."
                return _error(400, "invalid_request_error", message, "insufficient_funds")
            if charge_intent["currency"] != currency:
                return _error(400, "invalid_request_error", "Currency differs from the charge's.")
        transfer_id = f"tr_{secrets.token_hex(12)}"
        transfer = {
            "id": transfer_id,
            "object": "transfer",
            "amount": amount,
            "amount_reversed": 0,
            "currency": currency,
            "destination": destination,
            "source_transaction": source,
            "transfer_group": params.get("transfer_group"),
            "reversed": False,
            "reversals": {"object": "list", "data": []},
            "metadata": self._metadata(params),
            "created": int(time.time()),
            "livemode": False,
        }
        self.state.transfers[transfer_id] = transfer
        return 200, transfer

    def _create_reversal(self, transfer_id: str, params: dict[str, str]) -> tuple[int, Any]:
        transfer = self.state.transfers.get(transfer_id)
        if transfer is None:
            return _error(404, "invalid_request_error", "No such transfer.", "resource_missing")
        left = transfer["amount"] - transfer["amount_reversed"]
        try:
            amount = int(params.get("amount", left))
        except ValueError:
            return _error(400, "invalid_request_error", "Invalid integer: amount.")
        if amount <= 0 or amount > left:
            message = f"The reversal amount must be between 1 and {left}."
            return _error(400, "invalid_request_error", message)
        reversal = {
            "id": f"trr_{secrets.token_hex(12)}",
            "object": "transfer_reversal",
            "amount": amount,
            "currency": transfer["currency"],
            "transfer": transfer_id,
            "metadata": self._metadata(params),
            "created": int(time.time()),
        }
        transfer["amount_reversed"] += amount
        transfer["reversed"] = transfer["amount_reversed"] == transfer["amount"]
        transfer["reversals"]["data"].append(reversal)
        return 200, reversal

    def _handler_class(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self, method: str) -> None:
                url = urlsplit(self.path)
                if method == "GET" and url.path.startswith("/connect/setup/"):
                    self._onboarding_form(url.path)
                    return
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                params = dict(parse_qsl(body if method == "POST" else url.query))
                failure = fake._take_failure(url.path)
                if failure is not None and not failure.after_processing:
                    if failure.delay:
                        time.sleep(failure.delay)
                    if failure.status:
                        self._send(*_error(failure.status, failure.error_type, failure.message))
                    return
                status, payload = fake._handle(method, url.path, params, self.headers)
                if failure is not None:
                    if failure.delay:
                        time.sleep(failure.delay)
                    if failure.status:
                        self._send(*_error(failure.status, failure.error_type, failure.message))
                    return
                self._send(status, payload)

            def _onboarding_form(self, path: str) -> None:
                """Stripe's hosted onboarding, filled in at once: the account is enabled,
                account.updated is delivered, and the browser goes to the link's return_url."""
                link_url = f"{fake.base_url}{path}"
                with fake.lock:
                    link = next(
                        (item for item in fake.state.account_links if item["url"] == link_url),
                        None,
                    )
                if link is None or link["account"] not in fake.state.accounts:
                    self._send(*_error(404, "invalid_request_error", "No such account link."))
                    return
                account = fake.complete_onboarding(link["account"])
                fake._emit("account.updated", account)
                self.send_response(302)
                self.send_header("Location", link["return_url"])
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _send(self, status: int, payload: Any) -> None:
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.send_header("Request-Id", f"req_{secrets.token_hex(6)}")
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

            def do_GET(self):
                self._serve("GET")

            def do_POST(self):
                self._serve("POST")

            def log_message(self, format, *args):
                pass

        return Handler


def main(argv: list[str] | None = None) -> None:
    """`python -m backend.tests.fake_stripe --port 12111 --webhook-url ...`: serve until ^C."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=12111)
    parser.add_argument("--webhook-url", default=None)
    parser.add_argument("--state-file", type=Path, default=None)
    args = parser.parse_args(argv)
    fake = FakeStripe(port=args.port, webhook_url=args.webhook_url, state_file=args.state_file)
    fake.start()
    print(f"Stripe stand-in on {fake.base_url} (secret key {API_KEY})", flush=True)
    try:
        fake.thread.join()
    except KeyboardInterrupt:
        fake.stop()


if __name__ == "__main__":
    main()
