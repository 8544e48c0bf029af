"""What bench/run.sh measures: one entry per table row (used by wrk and by bench/queries.py).

`path` and `body` may hold "{id}" (a random listed session id per request); `tokens` picks a
random bench user's or creator's JWT per request. Anonymous catalog reads skip the page cache
(they send Cache-Control: no-cache) unless `cached`: those measure the cached catalog.
"""

import json
import sys

SCENARIOS: dict[str, dict] = {
    "baseline": {"path": "/bench/baseline/catalog/"},
    "list": {"path": "/api/sessions/"},
    "list_p100": {"path": "/api/sessions/?page_size=100"},
    "filtered": {
        "path": "/api/sessions/?category=coding&min_price=10&max_price=80&is_online=true"
        "&available=true&ordering=-price"
    },
    "search": {"path": "/api/sessions/?search=python"},
    "search2": {"path": "/api/sessions/?search=watercolor%20workshop"},
    "detail": {"path": "/api/sessions/{id}/"},
    "list_cached": {"path": "/api/sessions/", "cached": True},
    "filtered_cached": {
        "path": "/api/sessions/?category=coding&min_price=10&max_price=80&is_online=true"
        "&available=true&ordering=-price",
        "cached": True,
    },
    "detail_cached": {"path": "/api/sessions/{id}/", "cached": True},
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

if __name__ == "__main__":
    # bench/run.sh reads the scenarios as lines "name|method|path|body|tokens|cached" (not tabs:
    # `read` would merge empty tab-separated fields).
    if len(sys.argv) > 1:
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
                    ]
                )
            )
