"""The registry of every error `code` the API can answer (CONTRACT.md, Conventions).

Every error body is `{"code", "detail"}` (validation errors add `"errors"`), and `code` is
always one of these members. Domain errors refuse an unregistered code when they are raised
(backend/exceptions.py), the exception handler maps library exceptions (DRF, simplejwt,
Django) onto members, and backend/tests/test_error_registry.py checks that every `code=`
literal in backend/ is registered and every member is used somewhere. Swagger lists, per
operation, the members it can answer (backend/schema.py).

A member is `(value, HTTP status, one-line meaning)`.
"""

from enum import StrEnum


class ErrorCode(StrEnum):
    status: int
    meaning: str

    def __new__(cls, value: str, status: int, meaning: str) -> "ErrorCode":
        member = str.__new__(cls, value)
        member._value_ = value
        member.status = status
        member.meaning = meaning
        return member

    @classmethod
    def lookup(cls, value: object) -> "ErrorCode | None":
        """The member whose value is `value` (a str or a member), None if unregistered."""
        return cls._value2member_map_.get(str(value))  # type: ignore[return-value]

    # --- 400: bad input ---------------------------------------------------------------------
    INVALID = "invalid", 400, "Validation failed; `errors` maps each field to its messages."
    PARSE_ERROR = "parse_error", 400, "The request body could not be parsed."
    INVALID_JSON = "invalid_json", 400, "The body is not valid JSON (or is nested too deeply)."
    TOO_MANY_FIELDS = "too_many_fields", 400, "The form or query string has too many fields."
    BAD_HOST = "bad_host", 400, "The Host header names a host this API is not served under."
    BAD_REQUEST = "bad_request", 400, "The request is malformed."
    INVALID_SEATS = "invalid_seats", 400, "seats is not an integer in the allowed range."
    INVALID_AMOUNT = "invalid_amount", 400, "An amount cannot be expressed in the currency."
    PRICE_BELOW_MINIMUM = (
        "price_below_minimum",
        400,
        "The price is below the smallest amount Stripe charges in the currency.",
    )
    AMOUNT_TOO_LARGE = (
        "amount_too_large",
        400,
        "The largest booking's amount would exceed what Stripe can charge.",
    )
    INVALID_MINIMUM = "invalid_minimum", 400, "min_attendees is above the session's capacity."
    INVALID_DECISION_AT = (
        "invalid_decision_at",
        400,
        "decision_at is less than 1 h before the start or less than 1 h after publishing.",
    )
    START_TIME_PAST = "start_time_past", 400, "The session's start time is in the past."
    INVALID_TIMEZONE = "invalid_timezone", 400, "Not an IANA time zone name."
    INVALID_RRULE = "invalid_rrule", 400, "The series' RRULE is not valid RFC 5545."
    UNSUPPORTED_RRULE = "unsupported_rrule", 400, "The RRULE uses a part series do not support."
    RRULE_UNBOUNDED = "rrule_unbounded", 400, "The RRULE needs COUNT or UNTIL."
    TOO_MANY_OCCURRENCES = (
        "too_many_occurrences",
        400,
        "The RRULE gives more dates than a series may have (52).",
    )
    OCCURRENCE_IN_PAST = "occurrence_in_past", 400, "A date of the series would be in the past."
    OCCURRENCE_TOO_FAR = "occurrence_too_far", 400, "A date of the series is too far ahead."
    NO_OCCURRENCES = "no_occurrences", 400, "The RRULE gives no date at all."
    USERNAME_TAKEN = "username_taken", 400, "No free username could be picked for the account."
    TOKEN_MISMATCH = "token_mismatch", 400, "The refresh token belongs to another account."
    EMPTY_FILE = "empty_file", 400, "The uploaded file is empty."
    INVALID_IMAGE = "invalid_image", 400, "The upload is not a JPEG, PNG or WebP image."
    IMAGE_TOO_LARGE = "image_too_large", 400, "The image has too many pixels."
    INVALID_PURPOSE = "invalid_purpose", 400, "The upload purpose is unknown."
    SESSION_REQUIRED = "session_required", 400, "A session image needs session_id."
    SESSION_NOT_ALLOWED = "session_not_allowed", 400, "session_id applies to session images only."
    PAYMENT_REJECTED = "payment_rejected", 400, "Stripe refused the request (card declined, ...)."
    NOT_TEST_MODE = "not_test_mode", 400, "Test cards are accepted only with a test-mode key."
    INVALID_SIGNATURE = "invalid_signature", 400, "The Stripe-Signature header does not verify."
    INVALID_PAYLOAD = "invalid_payload", 400, "The webhook body is not a Stripe event."
    INVALID_EVENT = "invalid_event", 400, "The Stripe event's object has the wrong shape."
    UNKNOWN_PROVIDER = "unknown_provider", 400, "The OAuth provider is not one this API knows."
    OAUTH = "oauth", 400, "The OAuth provider rejected the sign-in."
    OAUTH_WRONG_AUDIENCE = "oauth_wrong_audience", 400, "The ID token was issued to another app."
    WEBHOOK_URL_NOT_ALLOWED = (
        "webhook_url_not_allowed",
        400,
        "The webhook URL is not https, or its host resolves to a private, loopback, link-local, "
        "multicast or reserved address (or does not resolve).",
    )
    INVALID_IDEMPOTENCY_KEY = (
        "invalid_idempotency_key",
        400,
        "The Idempotency-Key header is not 1 to 255 printable characters.",
    )
    INVALID_REDIRECT_URL = (
        "invalid_redirect_url",
        400,
        "return_url or refresh_url is not on one of CORS_ALLOWED_ORIGINS (no open redirect).",
    )

    # --- 401: who are you -------------------------------------------------------------------
    NOT_AUTHENTICATED = "not_authenticated", 401, "No access token was sent."
    AUTHENTICATION_FAILED = "authentication_failed", 401, "The credentials are not valid."
    TOKEN_NOT_VALID = "token_not_valid", 401, "The token is invalid, expired or revoked."
    BAD_AUTHORIZATION_HEADER = (
        "bad_authorization_header",
        401,
        "The Authorization header is not `Bearer <token>`.",
    )
    USER_NOT_FOUND = "user_not_found", 401, "The token's user no longer exists."
    USER_INACTIVE = "user_inactive", 401, "The token's user is deactivated."
    PASSWORD_CHANGED = "password_changed", 401, "The password changed after the token was issued."
    NO_ACTIVE_ACCOUNT = "no_active_account", 401, "No active account matches the credentials."

    # --- 403: not allowed -------------------------------------------------------------------
    PERMISSION_DENIED = "permission_denied", 403, "Authenticated, but not allowed to do this."
    CSRF_FAILED = "csrf_failed", 403, "The CSRF check of a cookie-authenticated request failed."
    ACCOUNT_INACTIVE = "account_inactive", 403, "The account is deactivated."
    NOT_CREATOR = "not_creator", 403, "Only the session's creator may do this."
    NOT_OWNER = "not_owner", 403, "Only the person who booked may do this."
    NOT_BOOKING_USER = "not_booking_user", 403, "Only the person who booked may review it."
    NOT_REVIEW_AUTHOR = "not_review_author", 403, "Only the review's author may edit it."
    NOT_SESSION_CREATOR = "not_session_creator", 403, "Only the session's creator may reply."

    # --- 404-415: routing and negotiation ---------------------------------------------------
    NOT_FOUND = "not_found", 404, "Unknown, or not yours to see."
    REVIEW_NOT_FOUND = "review_not_found", 404, "No visible review with this id."
    CREATOR_NOT_FOUND = "creator_not_found", 404, "No public creator with this username."
    METHOD_NOT_ALLOWED = "method_not_allowed", 405, "The method is not allowed on this URL."
    NOT_ACCEPTABLE = "not_acceptable", 406, "No answer in the format the Accept header asks for."
    REQUEST_TOO_LARGE = "request_too_large", 413, "The request body is larger than the limit."
    TOO_LARGE = "too_large", 413, "The upload is larger than UPLOAD_MAX_MB."
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type", 415, "The Content-Type is not accepted."

    # --- 409: state conflicts ---------------------------------------------------------------
    CONFLICT = "conflict", 409, "The resource's state does not allow this."
    BOOKING_NOT_CONFIRMED = "booking_not_confirmed", 409, "Only a confirmed booking is reviewed."
    SESSION_NOT_ENDED = "session_not_ended", 409, "The session has not ended yet."
    REVIEW_WINDOW_CLOSED = "review_window_closed", 409, "Reviews close 30 days after the end."
    ALREADY_REVIEWED = "already_reviewed", 409, "The booking already has a review."
    EDIT_WINDOW_CLOSED = "edit_window_closed", 409, "Reviews are editable for 7 days."
    ALREADY_REPLIED = "already_replied", 409, "The review already has the creator's reply."
    ALREADY_REPORTED = "already_reported", 409, "You already reported this review."
    BOOKING_CONFLICT = "booking_conflict", 409, "The booking's state does not allow this."
    SOLD_OUT = "sold_out", 409, "The session has no seats left."
    MINIMUM_RAISED = (
        "minimum_raised",
        409,
        "People have booked: min_attendees can only be lowered (not raised, added or removed).",
    )
    DECISION_MOVED_LATER = (
        "decision_moved_later",
        409,
        "People have booked: decision_at cannot move later.",
    )
    MINIMUM_DECIDED = "minimum_decided", 409, "The session's minimum has already been decided."
    NOT_ENOUGH_SEATS = "not_enough_seats", 409, "Fewer seats are left than asked for."
    TOO_MANY_HOLDS = (
        "too_many_holds",
        409,
        "The user already holds MAX_UNPAID_BOOKINGS unpaid pending bookings.",
    )
    SEATS_AVAILABLE = (
        "seats_available",
        409,
        "The seats asked for are free: book them instead of joining the waitlist.",
    )
    ALREADY_WAITING = "already_waiting", 409, "The user is already on this session's waitlist."
    ALREADY_BOOKED = "already_booked", 409, "The user already has an active booking here."
    NOT_BOOKABLE = "not_bookable", 409, "The session is not published."
    SESSION_STARTED = "session_started", 409, "The session has already started."
    OWN_SESSION = "own_session", 409, "Creators cannot book their own session."
    NOT_ACTIVE = "not_active", 409, "The booking is cancelled or expired."
    CANCELLATION_WINDOW = "cancellation_window", 409, "Too close to the start to cancel."
    NOT_RESCHEDULABLE = (
        "not_reschedulable",
        409,
        "Only a confirmed booking can be moved to another session.",
    )
    SAME_SESSION = "same_session", 409, "The booking is already for that session."
    OTHER_CREATOR = (
        "other_creator",
        409,
        "A booking moves only to another session of the same creator.",
    )
    PRICE_MISMATCH = (
        "price_mismatch",
        409,
        "The target session's price or currency differs from what the booking cost.",
    )
    RESCHEDULE_WINDOW = (
        "reschedule_window",
        409,
        "Its user may move a booking only while cancelling it would refund it in full.",
    )
    SEATS_LOCKED = "seats_locked", 409, "Seats cannot change once paid or confirmed."
    CHECKOUT_STARTED = "checkout_started", 409, "Seats cannot change once payment has started."
    EXPIRED = "expired", 409, "The booking's hold has expired."
    INVALID_TRANSITION = "invalid_transition", 409, "The status cannot change that way."
    INVALID_PAYMENT_TRANSITION = (
        "invalid_payment_transition",
        409,
        "The payment status cannot change that way.",
    )
    UNPAID = "unpaid", 409, "A paid session's booking cannot be confirmed before payment."
    CAPACITY_BELOW_SEATS_TAKEN = (
        "capacity_below_seats_taken",
        409,
        "The capacity would be below the seats already taken.",
    )
    SESSION_CANCELLED = "session_cancelled", 409, "The session is cancelled (final)."
    SERIES_FINISHED = (
        "series_finished",
        409,
        "Every date of the series has started or is cancelled; nothing left to change.",
    )
    INVALID_STATUS = "invalid_status", 409, "A new session cannot start out cancelled."
    HAS_BOOKINGS = "has_bookings", 409, "The session has bookings and cannot be deleted."
    PAYMENT_NOT_REQUIRED = "payment_not_required", 409, "The booking needs no payment."
    ALREADY_PAID = "already_paid", 409, "The booking has already been paid."
    NOT_PAYABLE = "not_payable", 409, "The booking cannot be paid in its status."
    PAYMENT_NOT_STARTED = "payment_not_started", 409, "The payment could not be started."
    NOT_PAID = "not_paid", 409, "Only a paid booking can be refunded."
    STILL_ACTIVE = "still_active", 409, "The booking still holds its seats: cancel it to refund."
    HAS_UPCOMING_SESSIONS = (
        "has_upcoming_sessions",
        409,
        "The account's upcoming sessions have active bookings: cancel them before deleting it.",
    )
    PAYOUTS_NOT_READY = (
        "payouts_not_ready",
        409,
        "A paid session needs its creator's Stripe account to accept charges (onboarding).",
    )
    TRANSFER_NOT_RETRYABLE = (
        "transfer_not_retryable",
        409,
        "Only a transfer Stripe refused (failed) can be retried.",
    )
    PAYMENT_RECORD_MISSING = (
        "payment_record_missing",
        409,
        "The paid booking has no payment record to refund.",
    )

    IDEMPOTENCY_KEY_IN_USE = (
        "idempotency_key_in_use",
        409,
        "A request with this Idempotency-Key is still running; retry shortly.",
    )

    # --- 422: cannot be done as asked -------------------------------------------------------
    IDEMPOTENCY_KEY_REUSED = (
        "idempotency_key_reused",
        422,
        "The Idempotency-Key was already used for a different request (method, path or body).",
    )

    # --- 429: throttled ---------------------------------------------------------------------
    THROTTLED = "throttled", 429, "Too many requests; retry after Retry-After seconds."

    # --- 5xx: our side or a provider --------------------------------------------------------
    SERVER_ERROR = "server_error", 500, "A bug: the request failed on the server."
    BAD_GATEWAY = "bad_gateway", 502, "An external service failed or timed out."
    PAYMENT_PROVIDER_UNAVAILABLE = (
        "payment_provider_unavailable",
        502,
        "Stripe failed or timed out; nothing was changed.",
    )
    PROVIDER_UNAVAILABLE = "provider_unavailable", 502, "The OAuth provider failed or timed out."
    UPSTREAM_UNAVAILABLE = "upstream_unavailable", 502, "nginx: the application is not answering."
    UPSTREAM_TIMEOUT = "upstream_timeout", 504, "nginx: the application took too long to answer."
    NOT_CONFIGURED = "not_configured", 503, "An optional integration is not configured."
    PAYMENTS_NOT_CONFIGURED = "payments_not_configured", 503, "Stripe is not configured."
    UPLOADS_BUSY = "uploads_busy", 503, "Every image decode slot is taken; retry shortly."
    STORAGE_UNAVAILABLE = "storage_unavailable", 503, "File storage is unavailable."
    DATABASE_UNAVAILABLE = "database_unavailable", 503, "The database is down or restarting."
    LOCK_TIMEOUT = "lock_timeout", 503, "The resource is busy (a lock wait timed out); retry."


def error_body(code: ErrorCode, detail: str, errors: dict | None = None) -> dict:
    """The one error body shape: `{code, detail}`, plus `errors` for validation failures."""
    body: dict = {"code": str(code), "detail": str(detail)}
    if errors is not None:
        body["errors"] = errors
    return body
