"""A small stateful stand-in for the Stripe API, served over HTTP on 127.0.0.1.

The project's real `stripe` client talks to it through STRIPE_API_BASE, so the tests exercise
the same requests, headers, form encoding, idempotency keys and error parsing as production.
It implements only what the payment service uses: PaymentIntents (create, retrieve) and
Refunds (create), with Stripe's idempotency semantics (same key + same path -> the first
answer again). Tests drive the customer's side (`succeed`, `decline`, `cancel`), inject failures
(`fail_next`, `delay_next`) and build signed webhook events (`signed_event`).

localstripe (requirements-dev) runs the happy path in test_payments_localstripe.py, but it
ignores Idempotency-Key and cannot be told to fail or stall, which are the cases that matter
most here; hence this stand-in.
"""

import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import stripe

API_KEY = "sk_test_fake_0123456789"
PUBLISHABLE_KEY = "pk_test_fake_0123456789"
WEBHOOK_SECRET = "whsec_test_fake_0123456789"


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
    idempotent: dict[tuple[str, str], tuple[int, dict[str, Any]]] = field(default_factory=dict)
    requests: list[RecordedRequest] = field(default_factory=list)
    failures: dict[str, list[Failure]] = field(default_factory=dict)  # by path prefix
    refund_status: str = "succeeded"


def _error(status: int, error_type: str, message: str, code: str | None = None):
    body: dict[str, Any] = {"error": {"type": error_type, "message": message}}
    if code:
        body["error"]["code"] = code
    return status, body


class FakeStripe:
    def __init__(self) -> None:
        self.state = FakeStripeState()
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
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

    # --- what tests do ------------------------------------------------------------------------

    def fail_next(self, path_prefix: str, times: int = 1, **failure: Any) -> None:
        with self.lock:
            queue = self.state.failures.setdefault(path_prefix, [])
            queue.extend(Failure(**failure) for _ in range(times))

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
    ) -> tuple[bytes, str]:
        """A webhook body and its Stripe-Signature header, signed as Stripe signs them."""
        event = {
            "id": event_id or f"evt_{secrets.token_hex(12)}",
            "object": "event",
            "api_version": "2026-10-28.endive",
            "created": int(time.time()),
            "type": event_type,
            "livemode": False,
            "data": {"object": obj},
        }
        payload = json.dumps(event)
        header = stripe.WebhookSignature.generate_signature_header(
            payload, secret, timestamp=timestamp
        )
        return payload.encode(), header

    # --- the HTTP side ------------------------------------------------------------------------

    def _take_failure(self, path: str) -> Failure | None:
        with self.lock:
            for prefix, queue in self.state.failures.items():
                if path.startswith(prefix) and queue:
                    return queue.pop(0)
        return None

    def _handle(self, method: str, path: str, params: dict[str, str], headers) -> tuple[int, Any]:
        if headers.get("Authorization") != f"Bearer {API_KEY}":
            return _error(401, "invalid_request_error", "Invalid API Key provided.")
        key = headers.get("Idempotency-Key")
        with self.lock:
            self.state.requests.append(RecordedRequest(method, path, params, key))
            if method == "POST" and key and (key, path) in self.state.idempotent:
                return self.state.idempotent[(key, path)]
            result = self._route(method, path, params)
            if method == "POST" and key and result[0] < 500:
                self.state.idempotent[(key, path)] = result
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
        if method == "GET" and path.startswith("/v1/payment_intents/"):
            intent = self.state.intents.get(path.rsplit("/", 1)[1])
            if intent is None:
                return _error(
                    404, "invalid_request_error", "No such payment_intent.", "resource_missing"
                )
            return 200, intent
        if method == "POST" and path == "/v1/refunds":
            return self._create_refund(params)
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

    def _cancel_intent(self, intent_id: str) -> tuple[int, Any]:
        intent = self.state.intents.get(intent_id)
        if intent is None:
            return _error(404, "invalid_request_error", "No such payment_intent.")
        if intent["status"] in ("succeeded", "canceled"):
            message = f"This PaymentIntent's status is {intent['status']}; it cannot be canceled."
            return _error(400, "invalid_request_error", message, "payment_intent_unexpected_state")
        intent["status"] = "canceled"
        return 200, intent

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
        refund_id = f"re_{secrets.token_hex(12)}"
        refund = {
            "id": refund_id,
            "object": "refund",
            "amount": intent["amount"],
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
        return 200, refund

    def _handler_class(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self, method: str) -> None:
                url = urlsplit(self.path)
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
