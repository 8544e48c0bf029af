"""The catalog's compiled shapes (backend/selectors/compiled.py) answer what the ORM would.

On PostgreSQL the unfiltered catalog and session detail run SQL compiled once per process with
stand-in values; each case here renders the same requests with that cache and with it
switched off (the ORM path SQLite always takes) and compares the JSON whole, over what the
stand-ins replace: "now" (seat holds running out, sessions starting), the viewer (meeting
URLs, drafts) and the session id.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from backend.models import Booking
from backend.selectors import compiled
from backend.tests.factories import BookingFactory, CreatorFactory, SessionFactory, UserFactory
from backend.tests.support.backdating import backdate, expire_hold
from backend.tests.support.clients import auth_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalog(user):
    creator = CreatorFactory(first_name="Ada")
    now = timezone.now()
    soon = SessionFactory(creator=creator, capacity=5, start_time=now + timedelta(hours=2))
    later = SessionFactory(creator=creator, capacity=3, start_time=now + timedelta(days=2))
    draft = SessionFactory(creator=creator, status="draft", start_time=now + timedelta(days=3))
    SessionFactory(creator=creator, start_time=now - timedelta(hours=1))  # started: not listed
    BookingFactory(session=soon, user=user, seats=2)  # confirmed: the user sees the link
    BookingFactory(session=soon, status=Booking.Status.PENDING)  # in its hold: takes a seat
    expire_hold(BookingFactory(session=later, status=Booking.Status.PENDING, seats=3))
    return {"creator": creator, "soon": soon, "later": later, "draft": draft}


def both_ways(monkeypatch, requests):
    """Each (client, path) answered with the compiled shapes, then through the ORM."""
    with_cache = [(c.get(path).status_code, c.get(path).json()) for c, path in requests]
    monkeypatch.setattr(compiled, "supported", lambda using="default": False)
    through_orm = [(c.get(path).status_code, c.get(path).json()) for c, path in requests]
    return with_cache, through_orm


@pytest.mark.postgres
def test_compiled_list_and_detail_answer_like_the_orm(monkeypatch, catalog, user, api_client):
    creator_client = auth_client(catalog["creator"])
    user_client = auth_client(user)
    paths = [
        "/api/sessions/",
        "/api/sessions/?page_size=1",
        "/api/sessions/?page=2&page_size=1",
        f"/api/sessions/{catalog['soon'].pk}/",
        f"/api/sessions/{catalog['draft'].pk}/",
    ]
    requests = [(c, p) for c in (api_client, user_client, creator_client) for p in paths]
    with_cache, through_orm = both_ways(monkeypatch, requests)

    assert with_cache == through_orm
    anonymous_list = with_cache[0][1]
    assert anonymous_list["count"] == 2
    # Confirmed 2 + a pending hold 1 of 5; the expired hold of 3 gives its seats back.
    assert [(s["title"], s["seats_left"]) for s in anonymous_list["results"]] == [
        (catalog["soon"].title, 2),
        (catalog["later"].title, 3),
    ]
    assert anonymous_list["results"][0]["meeting_url"] is None
    user_detail = with_cache[len(paths) + 3][1]
    assert user_detail["meeting_url"] == catalog["soon"].meeting_url
    # The draft: the creator's own (200), nobody else's (404).
    assert [with_cache[i * len(paths) + 4][0] for i in range(3)] == [404, 404, 200]


@pytest.mark.postgres
def test_compiled_shapes_follow_the_clock(catalog, api_client):
    soon = catalog["soon"]
    path = f"/api/sessions/{soon.pk}/"
    assert api_client.get(path).json()["seats_left"] == 2
    pending = Booking.objects.get(session=soon, status=Booking.Status.PENDING)
    # The hold's end is stored (hold_expires_at); "now" is the request's, not the compile's.
    Booking.objects.filter(pk=pending.pk).update(
        hold_expires_at=timezone.now() + timedelta(minutes=1)
    )
    assert api_client.get(path).json()["seats_left"] == 2  # still held
    Booking.objects.filter(pk=pending.pk).update(
        hold_expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert api_client.get(path).json()["seats_left"] == 3  # the hold ran out
    # A session that starts leaves the (compiled) list without a recompile.
    backdate(soon, start_time=timedelta(minutes=1))
    assert [s["id"] for s in api_client.get("/api/sessions/").json()["results"]] == [
        catalog["later"].pk
    ]


@pytest.mark.postgres
def test_a_new_booking_shows_at_once(catalog, api_client):
    later = catalog["later"]
    assert api_client.get(f"/api/sessions/{later.pk}/").json()["seats_left"] == 3
    BookingFactory(session=later, user=UserFactory())
    assert api_client.get(f"/api/sessions/{later.pk}/").json()["seats_left"] == 2
    listed = api_client.get("/api/sessions/").json()["results"]
    assert [s["seats_left"] for s in listed if s["id"] == later.pk] == [2]


@pytest.mark.postgres
def test_compiled_list_and_detail_query_counts(catalog, user, django_assert_num_queries):
    user_client = auth_client(user)
    user_client.get("/api/sessions/")  # compile first; the count is per request after
    user_client.get(f"/api/sessions/{catalog['soon'].pk}/")
    with django_assert_num_queries(3):  # the user (JWT), the total, the page
        assert user_client.get("/api/sessions/").status_code == 200
    with django_assert_num_queries(2):  # the user, the session
        assert user_client.get(f"/api/sessions/{catalog['soon'].pk}/").status_code == 200


@pytest.mark.postgres
def test_a_shape_is_compiled_once_per_key(catalog):
    from backend.models import Session

    built = []

    def shape(stand_ins):
        built.append(stand_ins.now)
        return (
            Session.objects.filter(status="published", start_time__gt=stand_ins.now)
            .values("id")
            .order_by("id")
        )

    first = compiled.values_rows(("test-shape",), shape)
    second = compiled.values_rows(("test-shape",), shape)
    assert first == second == [{"id": catalog["soon"].pk}, {"id": catalog["later"].pk}]
    assert built == [compiled.STAND_IN_NOW]


@pytest.mark.postgres
def test_a_shape_with_a_foreign_datetime_is_not_cached(catalog):
    from backend.models import Session

    fixed = timezone.now()

    def shape(stand_ins):
        return Session.objects.filter(start_time__gt=fixed).values("id")

    assert compiled.values_rows(("foreign-datetime",), shape) is None


def test_other_databases_take_the_orm_path(is_postgres, catalog, api_client):
    if is_postgres:
        pytest.skip("SQLite's path")
    assert compiled.values_rows(("anything",), lambda *args: None) is None
    assert api_client.get("/api/sessions/").json()["count"] == 2


FILTERED_PATHS = [
    "/api/sessions/?category=CODING",
    "/api/sessions/?category=co_ing",  # "_" is a LIKE wildcard: must not match "coding"
    "/api/sessions/?category=%25",
    "/api/sessions/?min_price=10&max_price=80&is_online=true&available=true&ordering=-price",
    "/api/sessions/?is_online=false",
    "/api/sessions/?available=false",
    "/api/sessions/?search=python",
    "/api/sessions/?search=ada",  # the creator's name
    "/api/sessions/?search=python&ordering=price",
    "/api/sessions/?search=o%27brien%20%22x%22",
    "/api/sessions/?creator=ada",
    "/api/sessions/?creator={creator_id}",
    "/api/sessions/?creator=99999999999999999999",
    "/api/sessions/?ordering=rating",
    "/api/sessions/?ordering=-created_at&page_size=1&page=2",
    "/api/sessions/?start_after={past}&start_before={soon}",
    "/api/sessions/?runs=confirmed",
    "/api/sessions/?page=2&page_size=1",
]


def _paths(catalog):
    now = timezone.now()
    values = {
        "creator_id": catalog["creator"].pk,
        "past": (now - timedelta(days=1)).isoformat().replace("+00:00", "Z"),
        "soon": (now + timedelta(days=2, hours=1)).isoformat().replace("+00:00", "Z"),
    }
    return [path.format(**values) for path in FILTERED_PATHS]


@pytest.mark.postgres
def test_compiled_filters_search_and_pages_answer_like_the_orm(
    monkeypatch, catalog, user, api_client
):
    catalog["creator"].username = "ada"
    catalog["creator"].save()
    paths = _paths(catalog)
    requests = [(c, p) for c in (api_client, auth_client(user)) for p in paths]
    with_cache, through_orm = both_ways(monkeypatch, requests)

    assert with_cache == through_orm
    answers = dict(zip(paths, with_cache[: len(paths)], strict=True))
    assert {s for s, _ in answers.values()} == {200}
    titles = {p: [s["title"] for s in a["results"]] for p, (_, a) in answers.items()}
    assert titles["/api/sessions/?category=CODING"] == [
        catalog["soon"].title,
        catalog["later"].title,
    ]
    assert titles["/api/sessions/?category=co_ing"] == []
    assert titles["/api/sessions/?category=%25"] == []
    assert titles["/api/sessions/?available=false"] == []
    assert titles["/api/sessions/?search=ada"] == [catalog["soon"].title, catalog["later"].title]
    assert (
        answers["/api/sessions/?page=2&page_size=1"][1]["results"][0]["id"] == catalog["later"].pk
    )


@pytest.mark.postgres
def test_every_catalog_request_runs_a_compiled_shape(catalog, user, api_client):
    """No catalog read falls back to the ORM on PostgreSQL (a factory using its own clock, an
    input Django transforms): each shape it stored compiled."""
    compiled._shapes.clear()
    client = auth_client(user)
    for path in [*_paths(catalog), "/api/sessions/", "/api/sessions/?page=2&page_size=1"]:
        for c in (api_client, client):
            assert c.get(path).status_code == 200
    assert c.get(f"/api/sessions/{catalog['soon'].pk}/").status_code == 200
    refused = [key for key, shape in compiled._shapes.items() if shape is None]
    # The one shape Django proves empty: the count for a creator id past the database's range
    # (`nothing`, the key's last part; its page is never read).
    assert refused == [(("count", ("catalog", (None, None, None, (), True))), (), None)]
    assert len(compiled._shapes) > 20


@pytest.mark.postgres
def test_one_shape_serves_every_value_and_page(catalog, api_client):
    compiled._shapes.clear()
    for category in ("coding", "yoga", "art", "Coding"):
        for page in (1, 2):
            api_client.get(f"/api/sessions/?category={category}&page_size=1&page={page}")
    # One count shape and one page shape per page kind (first, early): three, not sixteen.
    assert len(compiled._shapes) == 3
    assert None not in compiled._shapes.values()


@pytest.mark.postgres
def test_an_input_django_rewrites_is_refused(catalog):
    from backend.models import Session

    def shape(stand_ins):
        return Session.objects.filter(title__icontains=stand_ins.inputs["word"]).values("id")

    assert compiled.values_rows(("contains",), shape, inputs={"word": "py"}) is None


@pytest.mark.postgres
def test_an_input_the_factory_drops_is_refused(catalog):
    from backend.models import Session

    def shape(stand_ins):
        return Session.objects.filter(title="fixed").values("id")

    assert compiled.values_rows(("dropped",), shape, inputs={"word": "py"}) is None


def test_a_superscript_creator_is_a_username_not_a_crash(catalog, api_client):
    answer = api_client.get("/api/sessions/?creator=%C2%B2")  # "²": a digit int() refuses
    assert answer.status_code == 200
    assert answer.json()["count"] == 0
