"""What the benchmarks measure: one entry per table row (wrk in bench/run.sh, bench/cpu.py,
bench/queries.py).

`path` and `body` may hold placeholders, drawn at random per request (bench/wrk.lua,
bench/cpu.py; bench/queries.py takes the first value): "{id}" a listed session, "{hot}" one
popular session, "{page}" a page of the default catalog past the first, "{category}",
"{max_price}" and "{word}" filter values and search words (one compiled shape must serve them
all: backend/selectors/compiled.py). `tokens` picks a random bench user's or creator's JWT per
request. Anonymous catalog reads skip the page cache (they send Cache-Control: no-cache) unless
`cached`; `etag`: the request sends the page's ETag back (a 304). `plain`: the plain-Django
view (bench/views.py) that answers the same rows and JSON, the yardstick of the ratios.
"""

import json
import sys

FILTERS = "category={category}&min_price=10&max_price={max_price}&is_online=true&available=true"
POPULAR = "category=coding&min_price=10&max_price=80&is_online=true&available=true&ordering=-price"
PLAIN_LIST = "/bench/baseline/catalog/"
PLAIN_DETAIL = "/bench/baseline/sessions/"
PLACEHOLDERS = {
    "category": ["coding", "yoga", "fitness", "career", "art", "music", "language", "wellness"],
    "word": ["python", "yoga", "watercolor", "guitar", "spanish", "meditation", "interview", "sql"],
    "max_price": [str(price) for price in range(40, 121)],
}

SCENARIOS: dict[str, dict] = {
    "baseline": {"path": PLAIN_LIST},
    "list": {"path": "/api/sessions/", "plain": PLAIN_LIST},
    "pages": {"path": "/api/sessions/?page={page}", "plain": PLAIN_LIST + "?page={page}"},
    "list_p100": {"path": "/api/sessions/?page_size=100"},
    "filtered": {
        "path": f"/api/sessions/?{FILTERS}&ordering=-price",
        "plain": f"{PLAIN_LIST}?{FILTERS}&ordering=-price",
    },
    "search": {"path": "/api/sessions/?search={word}", "plain": PLAIN_LIST + "?search={word}"},
    "search2": {
        "path": "/api/sessions/?search=watercolor%20workshop",
        "plain": PLAIN_LIST + "?search=watercolor%20workshop",
    },
    "detail": {"path": "/api/sessions/{id}/", "plain": PLAIN_DETAIL + "{id}/"},
    "list_cached": {"path": "/api/sessions/", "plain": PLAIN_LIST, "cached": True},
    "list_304": {"path": "/api/sessions/", "plain": PLAIN_LIST, "cached": True, "etag": True},
    # A popular filtered page and search: the cache serves what many readers ask for.
    "filtered_cached": {
        "path": f"/api/sessions/?{POPULAR}",
        "plain": f"{PLAIN_LIST}?{POPULAR}",
        "cached": True,
    },
    "search_cached": {
        "path": "/api/sessions/?search=python",
        "plain": PLAIN_LIST + "?search=python",
        "cached": True,
    },
    # One popular session (a random one of 5,000 would mostly miss in a short round).
    "detail_cached": {
        "path": "/api/sessions/{hot}/",
        "plain": PLAIN_DETAIL + "{hot}/",
        "cached": True,
    },
    "book": {
        "method": "POST",
        "path": "/api/bookings/",
        "body": '{"session": {id}, "seats": 1}',
        "tokens": "users",
    },
    "my_bookings": {"path": "/api/bookings/", "tokens": "users"},
    "dash_user": {"path": "/api/dashboard/user/", "tokens": "users"},
    "dash_creator": {"path": "/api/dashboard/creator/", "tokens": "creators"},
}
# The catalog's rows of issue 24's table: each against its plain view.
CATALOG = [name for name, spec in SCENARIOS.items() if "plain" in spec]


if __name__ == "__main__":
    # bench/run.sh reads the scenarios as lines "name|method|path|body|tokens|cached|plain|etag"
    # (not tabs: `read` would merge empty tab-separated fields).
    if sys.argv[1:] == ["--placeholders"]:  # for bench/wrk.lua (BENCH_PLACEHOLDERS)
        print(";".join(f"{name}={','.join(values)}" for name, values in PLACEHOLDERS.items()))
    elif len(sys.argv) > 1:
        print(json.dumps(SCENARIOS[sys.argv[1]]))
    else:
        for name, spec in SCENARIOS.items():
            print(
                "|".join(
                    [
                        name,
                        spec.get("method", "GET"),
                        spec["path"],
                        spec.get("body", ""),
                        spec.get("tokens", ""),
                        "cached" if spec.get("cached") else "",
                        spec.get("plain", ""),
                        "etag" if spec.get("etag") else "",
                    ]
                )
            )
