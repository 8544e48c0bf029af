"""Output shapes of the dashboards (CONTRACT.md, "Dashboards"). Read-only; fed by
backend.selectors.dashboards. Names are unique because drf-yasg names its schemas after them."""

from typing import TYPE_CHECKING, TypedDict

from drf_yasg.utils import swagger_serializer_method
from rest_framework import serializers

from backend.booking_rules import seats_to_go
from backend.models import Booking, Session, User
from backend.serializers.common import SessionSummarySerializer
from backend.serializers.users import UserProfileSerializer


class CreatorSessionAnnotations(TypedDict):
    """What the creator dashboard (backend/selectors/dashboards.py) annotates on its sessions."""

    seats_taken: int
    bookings_count: int


# For mypy, a session row with those annotations; at run time (drf-yasg reads the hints) a Session.
if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

    CreatorDashboardSession = WithAnnotations[Session, CreatorSessionAnnotations]
else:
    CreatorDashboardSession = Session

MONEY_HELP = (
    "Paid minus refunded, per currency: a paid booking counts its amount minus any succeeded "
    "partial refund; a refunded booking counts 0; free, unpaid and failed ones count 0. A "
    "currency is listed once it has a paid or refunded booking; sorted by currency."
)


class DashboardMoneySerializer(serializers.Serializer):
    currency = serializers.CharField(help_text="ISO 4217, upper case.")
    amount = serializers.DecimalField(
        max_digits=12, decimal_places=2, help_text="Decimal string with 2 places."
    )


class UserDashboardStatsSerializer(serializers.Serializer):
    upcoming = serializers.IntegerField(
        help_text="Active bookings (confirmed, or pending within the hold) whose session has "
        "not ended yet (a session in progress is upcoming)."
    )
    past = serializers.IntegerField(
        help_text="Active bookings whose session has ended (start_time + duration)."
    )
    cancelled = serializers.IntegerField(
        help_text="Cancelled bookings, whenever their session is. Expired bookings (and pending "
        "ones past their hold) are counted nowhere."
    )
    total_spent = DashboardMoneySerializer(many=True, help_text=MONEY_HELP)


class UserDashboardBookingSerializer(serializers.ModelSerializer):
    """A booking on the user's dashboard; needs `select_related("session__creator")`."""

    amount = serializers.DecimalField(max_digits=10, decimal_places=2)
    currency = serializers.SerializerMethodField()
    session = SessionSummarySerializer()
    meeting_url = serializers.SerializerMethodField(
        help_text="The session's meeting link, only for a confirmed booking; otherwise null."
    )

    class Meta:
        model = Booking
        fields = [
            "id",
            "status",
            "payment_status",
            "seats",
            "amount",
            "currency",
            "session",
            "meeting_url",
        ]
        read_only_fields = fields

    def get_currency(self, booking: Booking) -> str:
        return booking.currency.upper()

    @swagger_serializer_method(serializers.URLField(allow_null=True))
    def get_meeting_url(self, booking: Booking) -> str | None:
        if booking.status != Booking.Status.CONFIRMED:
            return None
        return booking.session.meeting_url or None


class UserDashboardSerializer(serializers.Serializer):
    profile = UserProfileSerializer()
    stats = UserDashboardStatsSerializer()
    upcoming_bookings = UserDashboardBookingSerializer(
        many=True, help_text="The next 5 upcoming bookings, soonest session first."
    )
    past_bookings = UserDashboardBookingSerializer(
        many=True, help_text="The last 5 past bookings, latest session first."
    )


class CreatorDashboardSessionCountsSerializer(serializers.Serializer):
    draft = serializers.IntegerField()
    published = serializers.IntegerField()
    cancelled = serializers.IntegerField()


class CreatorDashboardEarningsSerializer(serializers.Serializer):
    pending = DashboardMoneySerializer(
        many=True,
        help_text="Your share (amount minus the platform fee, net of refunds) of paid bookings "
        "not transferred yet; a disputed booking is left out until the dispute is won.",
    )
    transferred = DashboardMoneySerializer(
        many=True,
        help_text="Sent to your Stripe account, minus what was reversed since (refunds after "
        "the transfer, lost disputes).",
    )


class CreatorDashboardStatsSerializer(serializers.Serializer):
    sessions = CreatorDashboardSessionCountsSerializer(help_text="Your sessions by status.")
    upcoming_sessions = serializers.IntegerField(
        help_text="Published sessions that have not ended yet."
    )
    confirmed_attendees = serializers.IntegerField(
        help_text="Seats of confirmed bookings over all your sessions."
    )
    revenue = DashboardMoneySerializer(many=True, help_text=MONEY_HELP)
    revenue_last_30_days = DashboardMoneySerializer(
        many=True,
        help_text="As `revenue`, for bookings paid in the last 30 days (payment time: the "
        "booking's confirmed_at, set when the payment succeeds).",
    )
    fill_rate = serializers.FloatField(
        allow_null=True,
        help_text="Over your published sessions that have ended: seats of confirmed bookings / "
        "total capacity (0..1, 4 decimals); null when there is no such session.",
    )
    earnings = CreatorDashboardEarningsSerializer(
        help_text="Stripe Connect payouts, per currency: pending + transferred + platform_fees "
        "equals revenue."
    )
    platform_fees = DashboardMoneySerializer(
        many=True,
        help_text="The platform's fee kept on your paid bookings, net of refunds (fixed when "
        "each booking was paid).",
    )


class CreatorDashboardSessionSerializer(serializers.ModelSerializer):
    """An upcoming session; needs the `seats_taken` and `bookings_count` annotations."""

    end_time = serializers.DateTimeField()
    currency = serializers.SerializerMethodField()
    seats_taken = serializers.IntegerField(
        help_text="Seats of confirmed bookings and of pending ones within the hold."
    )
    seats_left = serializers.SerializerMethodField()
    bookings_count = serializers.IntegerField(
        help_text="Bookings holding seats (confirmed, or pending within the hold)."
    )

    class Meta:
        model = Session
        fields = [
            "id",
            "title",
            "status",
            "start_time",
            "end_time",
            "price",
            "currency",
            "capacity",
            "seats_taken",
            "seats_left",
            "bookings_count",
        ]
        read_only_fields = fields

    def get_currency(self, session: Session) -> str:
        return session.currency.upper()

    def get_seats_left(self, session: CreatorDashboardSession) -> int:
        return max(session.capacity - session.seats_taken, 0)


class CreatorDashboardBookingSessionSerializer(serializers.ModelSerializer):
    class Meta:
        model = Session
        fields = ["id", "title", "start_time"]
        read_only_fields = fields


class CreatorDashboardAttendeeSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = ["id", "username", "first_name", "last_name"]
        read_only_fields = fields


class CreatorDashboardBookingSerializer(serializers.ModelSerializer):
    """A recent booking of one of the creator's sessions; needs `select_related`."""

    amount = serializers.DecimalField(max_digits=10, decimal_places=2)
    currency = serializers.SerializerMethodField()
    session = CreatorDashboardBookingSessionSerializer()
    user = CreatorDashboardAttendeeSerializer(help_text="The attendee.")

    class Meta:
        model = Booking
        fields = [
            "id",
            "status",
            "payment_status",
            "seats",
            "amount",
            "currency",
            "created_at",
            "session",
            "user",
        ]
        read_only_fields = fields

    def get_currency(self, booking: Booking) -> str:
        return booking.currency.upper()


class CreatorDashboardMinimumSerializer(serializers.ModelSerializer):
    """A session waiting for its minimum; needs the `committed_seats` annotation."""

    committed_seats = serializers.IntegerField(
        help_text="Seats counting towards min_attendees (confirmed, saved cards, free ones)."
    )
    seats_to_go = serializers.SerializerMethodField()

    class Meta:
        model = Session
        fields = [
            "id",
            "title",
            "start_time",
            "decision_at",
            "capacity",
            "min_attendees",
            "committed_seats",
            "seats_to_go",
        ]
        read_only_fields = fields

    def get_seats_to_go(self, session) -> int:
        return seats_to_go(min_attendees=session.min_attendees, committed=session.committed_seats)


class CreatorDashboardSerializer(serializers.Serializer):
    stats = CreatorDashboardStatsSerializer()
    upcoming_sessions = CreatorDashboardSessionSerializer(
        many=True,
        help_text="The next 10 published sessions that have not ended, soonest first (the "
        "count of all of them is stats.upcoming_sessions).",
    )
    recent_bookings = CreatorDashboardBookingSerializer(
        many=True, help_text="The 10 most recent bookings of your sessions, any status."
    )
    waiting_for_minimum = CreatorDashboardMinimumSerializer(
        many=True,
        help_text="Up to 10 published sessions with a minimum still to be decided, by decision "
        "time.",
    )
