"""The public catalog: each filter and ordering, pagination edges, search, query budgets."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from backend.models import Booking, Session
from backend.tests.factories import BookingFactory, CreatorFactory, SessionFactory, UserFactory
from backend.tests.support import auth_client, backdate

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalog():
    """Three listed sessions, and three that the default catalog hides."""
    now = timezone.now()
    ada = CreatorFactory(username="ada", first_name="Ada", last_name="Lovelace")
    bob = CreatorFactory(username="bob", first_name="Bob", last_name="Stone")
    python = SessionFactory(
        creator=ada,
        title="Python basics",
        description="Variables and loops.",
        category="coding",
        price=Decimal("10.00"),
        start_time=now + timedelta(days=1),
    )
    yoga = SessionFactory(
        creator=bob,
        title="Yoga flow",
        description="Gentle stretching.",
        category="yoga",
        price=Decimal("30.00"),
        start_time=now + timedelta(days=2),
        is_online=False,
        meeting_url="",
        location="Park",
    )
    advanced = SessionFactory(
        creator=bob,
        title="Advanced Python",
        description="Decorators and generators.",
        category="coding",
        price=Decimal("50.00"),
        start_time=now + timedelta(days=3),
        capacity=1,
    )
    BookingFactory(session=advanced)  # sold out
    past = SessionFactory(creator=ada, title="Past talk", start_time=now - timedelta(days=1))
    SessionFactory(creator=ada, title="Draft", status="draft")
    SessionFactory(creator=ada, title="Cancelled", status="cancelled")
    # created_at decides `ordering=created_at`: make it differ from start order.
    for session, days_ago in ((python, 1), (yoga, 3), (advanced, 2), (past, 4)):
        backdate(session, created_at=now - timedelta(days=days_ago))
    return {"ada": ada, "bob": bob, "now": now}


def titles(client, query: str = "") -> list[str]:
    response = client.get(f"/api/sessions/{query}")
    assert response.status_code == 200, response.content
    return [session["title"] for session in response.json()["results"]]


def iso(value) -> str:
    return value.isoformat().replace("+00:00", "Z")


def test_default_is_published_upcoming_soonest_first(api_client, catalog):
    assert titles(api_client) == ["Python basics", "Yoga flow", "Advanced Python"]


def test_seats_left(api_client, catalog):
    results = api_client.get("/api/sessions/").json()["results"]
    assert [s["seats_left"] for s in results] == [10, 10, 0]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("?category=coding", ["Python basics", "Advanced Python"]),
        ("?category=CODING", ["Python basics", "Advanced Python"]),
        ("?category=cooking", []),
        ("?creator=ada", ["Python basics"]),
        ("?creator=BOB", ["Yoga flow", "Advanced Python"]),
        ("?creator=nobody", []),
        ("?min_price=30", ["Yoga flow", "Advanced Python"]),
        ("?max_price=30", ["Python basics", "Yoga flow"]),
        ("?min_price=10.01&max_price=49.99", ["Yoga flow"]),
        ("?is_online=true", ["Python basics", "Advanced Python"]),
        ("?is_online=false", ["Yoga flow"]),
        ("?is_online=0", ["Yoga flow"]),
        ("?available=true", ["Python basics", "Yoga flow"]),
        ("?available=false", ["Advanced Python"]),
        ("?ordering=start_time", ["Python basics", "Yoga flow", "Advanced Python"]),
        ("?ordering=-start_time", ["Advanced Python", "Yoga flow", "Python basics"]),
        ("?ordering=price", ["Python basics", "Yoga flow", "Advanced Python"]),
        ("?ordering=-price", ["Advanced Python", "Yoga flow", "Python basics"]),
        ("?ordering=created_at", ["Yoga flow", "Advanced Python", "Python basics"]),
        ("?ordering=-created_at", ["Python basics", "Advanced Python", "Yoga flow"]),
        ("?category=coding&ordering=-price", ["Advanced Python", "Python basics"]),
        ("?ordering=,", ["Python basics", "Yoga flow", "Advanced Python"]),
        ("?ordering=price,-start_time", ["Python basics", "Yoga flow", "Advanced Python"]),
        ("?search=python", ["Python basics", "Advanced Python"]),
        ("?search=generators", ["Advanced Python"]),
        ("?search=yoga", ["Yoga flow"]),
        ("?search=lovelace", ["Python basics"]),
        ("?search=python&ordering=-price", ["Advanced Python", "Python basics"]),
        ("?search=zebra", []),
        ("?search=", ["Python basics", "Yoga flow", "Advanced Python"]),
    ],
)
def test_filters_and_ordering(api_client, catalog, query, expected):
    assert titles(api_client, query) == expected


def test_creator_filter_by_id(api_client, catalog):
    assert titles(api_client, f"?creator={catalog['bob'].pk}") == ["Yoga flow", "Advanced Python"]


def test_time_window_filters(api_client, catalog):
    now = catalog["now"]
    after = iso(now + timedelta(days=1, hours=12))
    before = iso(now + timedelta(days=2, hours=12))
    assert titles(api_client, f"?start_after={after}") == ["Yoga flow", "Advanced Python"]
    assert titles(api_client, f"?start_before={before}") == ["Python basics", "Yoga flow"]
    # An explicit lower bound replaces "not started yet": past sessions become listable.
    since = iso(now - timedelta(days=2))
    assert titles(api_client, f"?start_after={since}&start_before={before}") == [
        "Past talk",
        "Python basics",
        "Yoga flow",
    ]


def test_offset_with_unencoded_plus_is_understood(api_client, catalog):
    # "+02:00" typed into a URL arrives as " 02:00"; it means the same instant.
    local = (catalog["now"] + timedelta(days=1, hours=12)).astimezone(
        timezone.get_fixed_timezone(120)
    )
    query = "?start_after=" + local.isoformat().replace("+", "%20")
    assert titles(api_client, query) == ["Yoga flow", "Advanced Python"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("?start_after=yesterday", "start_after"),
        ("?start_after=2026-13-45T00:00:00Z", "start_after"),
        ("?start_before=2027-01-01T10:00:00", "start_before"),
        ("?min_price=-5", "min_price"),
        ("?min_price=abc", "min_price"),
        ("?max_price=1e400", "max_price"),
        ("?max_price=99999999999999999999", "max_price"),
        ("?max_price=NaN", "max_price"),
        ("?is_online=maybe", "is_online"),
        ("?available=yes please", "available"),
        ("?ordering=title", "ordering"),
        ("?ordering=price;drop table sessions", "ordering"),
        ("?search=" + "x" * 201, "search"),
        ("?category=%00", "category"),
        ("?search=a%00b", "search"),
    ],
)
def test_bad_filter_values_are_400(api_client, catalog, query, field):
    response = api_client.get(f"/api/sessions/{query}")
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"]


@pytest.mark.parametrize(
    "query",
    ["?creator=99999999999999999999999999", "?creator=-1", "?creator=%27%20or%201=1--"],
)
def test_odd_creator_values_match_nothing(api_client, catalog, query):
    assert titles(api_client, query) == []


def test_search_syntax_never_errors(api_client, catalog):
    for term in ['"unclosed', "python -basics", "or", "&|!:*()", "'; select 1; --", "naïve café"]:
        response = api_client.get("/api/sessions/", {"search": term})
        assert response.status_code == 200, term


def test_title_match_ranks_above_description_match(api_client):
    now = timezone.now()
    SessionFactory(
        title="Knitting circle",
        description="Bring watercolor paper too.",
        start_time=now + timedelta(days=1),
    )
    SessionFactory(
        title="Watercolor for beginners", description="Paint.", start_time=now + timedelta(days=5)
    )
    assert titles(api_client, "?search=watercolor") == [
        "Watercolor for beginners",
        "Knitting circle",
    ]


@pytest.mark.postgres
def test_postgres_search_stems_words_and_ranks_by_weight(api_client):
    now = timezone.now()
    SessionFactory(
        title="Morning stretch",
        description="We will be running a few laps.",
        category="fitness",
        start_time=now + timedelta(days=1),
    )
    SessionFactory(
        title="Running club",
        description="Meet at the gate.",
        category="fitness",
        start_time=now + timedelta(days=2),
    )
    SessionFactory(
        title="Track session",
        description="Intervals.",
        category="running",
        start_time=now + timedelta(days=3),
    )
    # "runs" matches "running" through the English stemmer; the title hit (A)
    # outranks the description hit (B), which outranks the category hit (C).
    assert titles(api_client, "?search=runs") == [
        "Running club",
        "Morning stretch",
        "Track session",
    ]


@pytest.mark.postgres
def test_postgres_search_expression_matches_the_gin_index(catalog):
    """The query repeats the indexed expression exactly, so the planner can use the index.

    (With a handful of rows it would rather scan; forbidding that shows whether it could.)
    """
    from django.contrib.postgres.search import SearchQuery

    from backend.selectors.catalog import SEARCH_CONFIG, SessionSearchVector

    query = SearchQuery("python", config=SEARCH_CONFIG, search_type="websearch")
    queryset = Session.objects.alias(vector=SessionSearchVector()).filter(vector=query)
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        plan = queryset.explain()
    assert "session_search_gin_idx" in plan
    assert sorted(queryset.values_list("title", flat=True)) == ["Advanced Python", "Python basics"]


# --- Pagination ----------------------------------------------------------------------------


def bulk_sessions(count: int, **fields) -> list[Session]:
    creator = fields.pop("creator", None) or CreatorFactory.create()
    start = timezone.now() + timedelta(days=1)
    return Session.objects.bulk_create(
        Session(
            creator=creator,
            title=f"Bulk {index:03d}",
            price=Decimal(index % 50),
            duration_minutes=60,
            start_time=start + timedelta(minutes=index),
            capacity=5,
            is_online=True,
            meeting_url="https://meet.example.com/bulk",
            status="published",
            **fields,
        )
        for index in range(count)
    )


def test_page_size_is_capped_at_100(api_client):
    bulk_sessions(105)
    body = api_client.get("/api/sessions/?page_size=1000").json()
    assert body["count"] == 105
    assert len(body["results"]) == 100
    assert body["next"].endswith("page=2&page_size=1000")


def test_default_page_size_and_links(api_client):
    bulk_sessions(25)
    first = api_client.get("/api/sessions/").json()
    assert (first["count"], len(first["results"]), first["previous"]) == (25, 20, None)
    second = api_client.get("/api/sessions/?page=2").json()
    assert [s["title"] for s in second["results"]] == [f"Bulk {i:03d}" for i in range(20, 25)]
    assert second["next"] is None


@pytest.mark.parametrize("page", ["3", "0", "-1", "abc", "99999999999999999999"])
def test_page_past_the_end_is_404_json(api_client, page):
    bulk_sessions(3)
    response = api_client.get(f"/api/sessions/?page_size=2&page={page}")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["detail"] == "Invalid page."


def test_page_size_garbage_falls_back_to_default(api_client):
    bulk_sessions(3)
    for size in ("abc", "0", "-5"):
        assert len(api_client.get(f"/api/sessions/?page_size={size}").json()["results"]) == 3


# --- Query budgets: the same number of queries for 1 row and for 100 ------------------------


def count_queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, response.content
    return len(queries)


@pytest.fixture
def busy_catalog():
    """100 sessions with bookings, some confirmed for the viewer (meeting_url per row)."""
    creator = CreatorFactory()
    viewer = UserFactory()
    sessions = bulk_sessions(100, creator=creator)
    Booking.objects.bulk_create(
        Booking(
            session=session,
            user=viewer,
            seats=1,
            amount=session.price,
            currency="USD",
            status="confirmed",
            payment_status="not_required",
        )
        for index, session in enumerate(sessions)
        if index % 2
    )
    return {"creator": creator, "viewer": viewer, "sessions": sessions}


@pytest.mark.parametrize("who", ["anonymous", "viewer", "creator"])
@pytest.mark.parametrize(
    "query", ["", "?search=bulk", "?available=true&ordering=-price&min_price=1"]
)
def test_list_query_count_does_not_grow_with_page_size(busy_catalog, api_client, who, query):
    client = api_client if who == "anonymous" else auth_client(busy_catalog[who])
    separator = "&" if query else "?"
    one = count_queries(client, f"/api/sessions/{query}{separator}page_size=1")
    hundred = count_queries(client, f"/api/sessions/{query}{separator}page_size=100")
    assert one == hundred
    # anonymous: count + page; signed in: + the user row.
    assert hundred == (2 if who == "anonymous" else 3)


def test_detail_query_count(busy_catalog, api_client):
    session = busy_catalog["sessions"][1]
    assert count_queries(api_client, f"/api/sessions/{session.pk}/") == 1
    body = auth_client(busy_catalog["viewer"]).get(f"/api/sessions/{session.pk}/").json()
    assert body["meeting_url"] == "https://meet.example.com/bulk"
    assert count_queries(auth_client(busy_catalog["viewer"]), f"/api/sessions/{session.pk}/") == 2


def test_my_sessions_and_attendees_query_counts(busy_catalog):
    client = auth_client(busy_catalog["creator"])
    one = count_queries(client, "/api/sessions/my_sessions/?page_size=1")
    hundred = count_queries(client, "/api/sessions/my_sessions/?page_size=100")
    assert one == hundred == 3

    session = busy_catalog["sessions"][1]
    BookingFactory.create_batch(3, session=session, status="cancelled")
    url = f"/api/sessions/{session.pk}/bookings/"
    assert count_queries(client, url + "?page_size=1") == count_queries(
        client, url + "?page_size=100"
    )
