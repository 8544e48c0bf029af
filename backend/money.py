"""Currencies and amounts: the one table every layer uses.

The serializers validate prices against it, the services compute amounts with it and the Stripe
gateway converts to minor units with it, so a currency cannot be accepted in one place and be
unchargeable in another.
"""

from decimal import ROUND_FLOOR, Decimal

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


# Stripe's minimum charge per currency, in the currency's major unit
# (https://docs.stripe.com/currencies#minimum-and-maximum-charge-amounts). A price below it can
# never be paid: Stripe refuses the PaymentIntent. Free (0) is not a charge and stays allowed.
MINIMUM_CHARGE: dict[str, Decimal] = {
    "USD": Decimal("0.50"),
    "EUR": Decimal("0.50"),
    "GBP": Decimal("0.30"),
    "INR": Decimal("0.50"),
    "CAD": Decimal("0.50"),
    "AUD": Decimal("0.50"),
    "NZD": Decimal("0.50"),
    "CHF": Decimal("0.50"),
    "SEK": Decimal("3.00"),
    "NOK": Decimal("3.00"),
    "DKK": Decimal("2.50"),
    "PLN": Decimal("2.00"),
    "SGD": Decimal("0.50"),
    "JPY": Decimal("50"),
}
# Stripe's `amount` holds at most eight digits in minor units for these currencies
# (99999999 = 999,999.99 USD or 99,999,999 JPY).
MAXIMUM_CHARGE_MINOR_UNITS = 99_999_999


def minimum_charge(currency: str) -> Decimal:
    return MINIMUM_CHARGE[currency.upper()]


def maximum_charge(currency: str) -> Decimal:
    """The largest amount one PaymentIntent can carry, in the major unit."""
    return Decimal(MAXIMUM_CHARGE_MINOR_UNITS).scaleb(-minor_unit_exponent(currency))


def price_problem(*, price: Decimal, currency: str, max_seats: int) -> ValidationFailed | None:
    """Why a session price can never be charged (None: it can). A booking of up to
    `max_seats` seats is charged price x seats in one PaymentIntent."""
    code = currency.upper()
    if price == 0 or code not in MINIMUM_CHARGE:
        # An unsupported currency is refused on its own (validate_currency).
        return None
    if price < minimum_charge(code):
        return ValidationFailed(
            f"The price is below the smallest amount that can be charged in {code} "
            f"({minimum_charge(code)} {code}); use 0 for a free session.",
            code="price_below_minimum",
        )
    if price * max_seats > maximum_charge(code):
        largest = (maximum_charge(code) / max_seats).quantize(
            Decimal(1).scaleb(-minor_unit_exponent(code)), rounding=ROUND_FLOOR
        )
        return ValidationFailed(
            f"A booking of {max_seats} seats would exceed the largest amount that can be "
            f"charged in {code} ({maximum_charge(code)} {code}); the price can be at most "
            f"{largest} {code}.",
            code="amount_too_large",
        )
    return None
