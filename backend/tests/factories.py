import uuid
from datetime import timedelta
from decimal import Decimal

import factory
from django.utils import timezone

from backend import booking_rules
from backend.models import Booking, Payment, Session, StoredFile, User


class UserFactory(factory.django.DjangoModelFactory[User]):
    class Meta:
        model = User

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.com")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    role = User.Role.USER
    password = factory.django.Password("correct-horse-battery")


class CreatorFactory(UserFactory):
    role = User.Role.CREATOR


class SessionFactory(factory.django.DjangoModelFactory[Session]):
    class Meta:
        model = Session

    creator = factory.SubFactory(CreatorFactory)
    title = factory.Sequence(lambda n: f"Session {n}")
    description = "A session for testing."
    category = "coding"
    price = Decimal("25.00")
    currency = "USD"
    duration_minutes = 60
    start_time = factory.LazyFunction(lambda: timezone.now() + timedelta(days=7))
    capacity = 10
    is_online = True
    meeting_url = "https://meet.example.com/room"
    status = Session.Status.PUBLISHED


class BookingFactory(factory.django.DjangoModelFactory[Booking]):
    class Meta:
        model = Booking

    session = factory.SubFactory(SessionFactory)
    user = factory.SubFactory(UserFactory)
    seats = 1
    amount = factory.LazyAttribute(lambda o: o.session.price * o.seats)
    currency = factory.LazyAttribute(lambda o: o.session.currency)
    status = Booking.Status.CONFIRMED
    payment_status = Booking.PaymentStatus.NOT_REQUIRED
    # A pending booking holds its seats for BOOKING_HOLD_MINUTES, as booking_create makes it.
    hold_expires_at = factory.LazyAttribute(
        lambda o: (
            booking_rules.new_hold_expires_at() if o.status == Booking.Status.PENDING else None
        )
    )


class PaymentFactory(factory.django.DjangoModelFactory[Payment]):
    """A succeeded charge for the whole booking; `kind=Payment.Kind.REFUND` for a refund."""

    class Meta:
        model = Payment

    booking = factory.SubFactory(BookingFactory, payment_status=Booking.PaymentStatus.PAID)
    kind = Payment.Kind.CHARGE
    stripe_id = factory.LazyAttributeSequence(
        lambda o, n: f"{'re' if o.kind == Payment.Kind.REFUND else 'pi'}_test_{n}"
    )
    amount = factory.LazyAttribute(lambda o: o.booking.amount)
    # Lower case, as Stripe's own objects carry it.
    currency = factory.LazyAttribute(lambda o: o.booking.currency.lower())
    status = "succeeded"


class StoredFileFactory(factory.django.DjangoModelFactory[StoredFile]):
    """The row of an uploaded avatar; the object itself is not written to storage."""

    class Meta:
        model = StoredFile

    owner = factory.SubFactory(UserFactory)
    purpose = StoredFile.Purpose.AVATAR
    key = factory.LazyFunction(lambda: f"avatars/{uuid.uuid4()}.webp")
    size = 1
    content_type = "image/webp"
