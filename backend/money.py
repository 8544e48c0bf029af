"""Currencies and amounts: the one table every layer uses.

The serializers validate prices against it, the services compute amounts with it and the Stripe
gateway converts to minor units with it, so a currency cannot be accepted in one place and be
unchargeable in another.
"""

from decimal import Decimal

from backend.exceptions import ValidationFailed

# ISO 4217 codes the marketplace accepts (all supported by Stripe).
SUPPORTED_CURRENCIES = (
    "USD",
    "EUR",
    "GBP",
    "INR",
    "CAD",
    "AUD",
    "NZD",
    "CHF",
    "SEK",
    "NOK",
    "DKK",
    "PLN",
    "SGD",
    "JPY",
)

# https://docs.stripe.com/currencies#zero-decimal: the amount is sent as is (1500 JPY -> 1500).
ZERO_DECIMAL_CURRENCIES = frozenset(
    {
        "BIF",
        "CLP",
        "DJF",
        "GNF",
        "JPY",
        "KMF",
        "KRW",
        "MGA",
        "PYG",
        "RWF",
        "UGX",
        "VND",
        "VUV",
        "XAF",
        "XOF",
        "XPF",
    }
)
# https://docs.stripe.com/currencies#three-decimal: thousandths, last digit 0. Our amounts have
# two decimal places, so x1000 always ends in 0.
THREE_DECIMAL_CURRENCIES = frozenset({"BHD", "JOD", "KWD", "OMR", "TND"})

CENT = Decimal("0.01")


def minor_unit_exponent(currency: str) -> int:
    code = currency.upper()
    if code in ZERO_DECIMAL_CURRENCIES:
        return 0
    if code in THREE_DECIMAL_CURRENCIES:
        return 3
    return 2


def is_whole_in(amount: Decimal, currency: str) -> bool:
    """Whether `amount` can be expressed in the currency's minor unit (no 12.50 JPY)."""
    scaled = Decimal(amount).scaleb(minor_unit_exponent(currency))
    return scaled == scaled.to_integral_value()


def to_minor_units(amount: Decimal, currency: str) -> int:
    """25.00 USD -> 2500, 1500 JPY -> 1500. An amount the currency cannot express is a 400."""
    if not is_whole_in(amount, currency):
        raise ValidationFailed(
            f"{amount} {currency.upper()} cannot be charged: {currency.upper()} has "
            f"{minor_unit_exponent(currency)} decimal places.",
            code="invalid_amount",
        )
    return int(Decimal(amount).scaleb(minor_unit_exponent(currency)))


def from_minor_units(amount: int, currency: str) -> Decimal:
    return Decimal(amount).scaleb(-minor_unit_exponent(currency)).quantize(CENT)
