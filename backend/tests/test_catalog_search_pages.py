"""Search result pages: best match first, renames found at once.

Pages (compiled once per shape, selectors/compiled.py) are checked against the same search
evaluated whole, without the paginator, on every page size, and for the edges (no match, past
the end, a page number no OFFSET can hold).
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from backend.selectors.catalog import catalog_base, catalog_search
from backend.tests.factories import CreatorFactory, SessionFactory
from backend.tests.support import auth_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def python_catalog():
    """Sessions matching "python" in the title, the description, the category or only through
    their creator's name, with ties on start time, and some that must not be listed."""
    start = timezone.now() + timedelta(days=1)
    monty = CreatorFactory(username="monty", first_name="Monty", last_name="Python")
    for index in range(11):
        title, description = (
            ("Python lab", "Generators.")
            if index % 3 == 0
            else ("Clay studio", "We use python scripts to fire the kiln.")
        )
        SessionFactory(
            title=f"{title} {index}",
            description=description,
            category="coding" if index % 2 else "art",
            start_time=start + timedelta(hours=index // 2),  # pairs share a start time
        )
    SessionFactory(creator=monty, title="Sketching", description="Pencils.", start_time=start)
    SessionFactory(title="Python draft", status="draft", start_time=start)
    SessionFactory(title="Python yesterday", start_time=timezone.now() - timedelta(days=1))
    SessionFactory(title="Pottery", description="Wheels.", start_time=start)


def expected_ids(term: str) -> list[int]:
    """The search evaluated whole, in the catalog's best-match order, no paginator involved."""
    listed = catalog_base().filter(start_time__gt=timezone.now())
    ranked = catalog_search(listed, term).order_by("-search_rank", "start_time", "id")
    return list(ranked.values_list("pk", flat=True))


@pytest.mark.parametrize("page_size", [1, 4, 5, 100])
def test_pages_of_a_search_are_the_whole_ranked_result_cut_in_pages(
    api_client, python_catalog, page_size, django_assert_max_num_queries
):
    expected = expected_ids("python")
    assert len(expected) == 12  # 11 by their text, 1 by the creator's name

    seen, page = [], 1
    while True:
        with django_assert_max_num_queries(2):
            response = api_client.get(
                "/api/sessions/", {"search": "python", "page_size": page_size, "page": page}
            )
        if response.status_code == 404:
            break
        assert response.status_code == 200
        body = response.json()
        assert body["count"] == 12
        assert len(body["results"]) == min(page_size, 12 - len(seen))
        seen += [row["id"] for row in body["results"]]
        page += 1
    assert seen == expected
    assert page == -(-12 // page_size) + 1  # the first page past the end was the 404


def test_a_search_without_matches_is_an_empty_first_page(api_client, python_catalog):
    response = api_client.get("/api/sessions/", {"search": "zebra"})
    assert response.status_code == 200
    assert (response.json()["count"], response.json()["results"]) == (0, [])


@pytest.mark.parametrize("page", ["4", "0", "-1", "abc", "1.5", "99999999999999999999"])
def test_a_search_page_past_the_end_or_not_a_page_is_404_json(api_client, python_catalog, page):
    response = api_client.get("/api/sessions/", {"search": "python", "page_size": 5, "page": page})
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["detail"] == "Invalid page."


def test_the_last_page_by_name(api_client, python_catalog):
    response = api_client.get(
        "/api/sessions/", {"search": "python", "page_size": 5, "page": "last"}
    )
    assert response.status_code == 200
    assert [row["id"] for row in response.json()["results"]] == expected_ids("python")[10:]


def test_a_renamed_creator_is_found_under_the_new_name_at_once(api_client):
    creator = CreatorFactory(username="ines", first_name="Ines", last_name="Moreau")
    SessionFactory(creator=creator, title="Watercolour basics", description="Paper and paint.")

    def found(term: str) -> list[str]:
        response = api_client.get("/api/sessions/", {"search": term})
        return [row["title"] for row in response.json()["results"]]

    assert found("moreau") == ["Watercolour basics"]
    response = auth_client(creator).patch(
        "/api/users/update_profile/", {"last_name": "Okafor"}, format="json"
    )
    assert response.status_code == 200
    assert found("okafor") == ["Watercolour basics"]
    assert found("moreau") == []
