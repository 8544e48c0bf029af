from datetime import timedelta
from decimal import Decimal

import factory
from django.utils import timezone

from backend.models import Booking, Session, User


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
