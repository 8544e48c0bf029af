"""How a booking's money splits between the platform and the creator (CONTRACT.md, "Creators
get paid"). One place for the fee arithmetic the payment, payout and dashboard code share.

Everything is computed in the currency's minor unit (cents, or yen for JPY) and rounded half
up to it, and the creator always gets the rest, so fee + share == the amount, to the unit, in
every currency. A refund shrinks both sides in proportion (the platform gives back its fee on
the refunded part too).
"""

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from urllib.parse import urlsplit

from django.conf import settings

from backend import money
from backend.models import ConnectedAccount

HUNDRED = Decimal(100)


def _half_up(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def fee_for(*, amount: Decimal, currency: str, percent: Decimal | None = None) -> Decimal:
    """The platform's fee on `amount`: `percent` (default PLATFORM_FEE_PERCENT) of it, rounded
    half up to the currency's minor unit."""
    rate = settings.PLATFORM_FEE_PERCENT if percent is None else percent
    minor = money.to_minor_units(amount, currency)
    return money.from_minor_units(_half_up(Decimal(minor) * Decimal(rate) / HUNDRED), currency)


@dataclass(frozen=True)
class Split:
    """What a booking's money is, net of refunds: the platform's fee and the creator's share."""

    fee: Decimal
    share: Decimal

    @property
    def total(self) -> Decimal:
        return self.fee + self.share


def split(*, amount: Decimal, fee: Decimal, refunded: Decimal, currency: str) -> Split:
    """`amount` paid with `fee` on it, `refunded` given back: the fee and share that remain.

    The fee left is the fee's part of what is left (`fee * (amount - refunded) / amount`,
    rounded half up), the share the rest: fee + share == amount - refunded exactly.
    """
    amount_minor = money.to_minor_units(amount, currency)
    if amount_minor <= 0:
        return Split(
            fee=money.from_minor_units(0, currency), share=money.from_minor_units(0, currency)
        )
    net_minor = max(amount_minor - money.to_minor_units(refunded, currency), 0)
    fee_minor = money.to_minor_units(fee, currency)
    fee_left = _half_up(Decimal(fee_minor) * net_minor / amount_minor)
    return Split(
        fee=money.from_minor_units(fee_left, currency),
        share=money.from_minor_units(net_minor - fee_left, currency),
    )


def fee_percent_for(*, creator_id: int) -> Decimal:
    """The creator's own rate when staff set one on their connected account, else the default."""
    override = (
        ConnectedAccount.objects.filter(user_id=creator_id)
        .values_list("fee_percent", flat=True)
        .first()
    )
    return settings.PLATFORM_FEE_PERCENT if override is None else override


def is_allowed_redirect(url: str) -> bool:
    """Whether `url` is on one of CORS_ALLOWED_ORIGINS (the SPA's origins): Stripe sends the
    creator back there after onboarding, so anything else would be an open redirect."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or "@" in parts.netloc:
        return False
    origin = f"{parts.scheme}://{parts.netloc}".lower()
    return origin in {allowed.rstrip("/").lower() for allowed in settings.CORS_ALLOWED_ORIGINS}
