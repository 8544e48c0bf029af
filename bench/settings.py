"""Settings for the benchmark server only: production settings plus the baseline view's URL.

bench/run.sh serves `core.wsgi` with DJANGO_SETTINGS_MODULE=bench.settings, so the API and the
baseline answer from the same gunicorn workers; production never imports this module.
"""

import os

from core.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"

# Experiment knob (README "Benchmarks"): Django's psycopg pool instead of persistent
# connections. The pool needs CONN_MAX_AGE=0.
if os.environ.get("BENCH_DB_POOL") == "1" and DATABASES["default"]["ENGINE"].endswith("postgresql"):  # noqa: F405
    DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = False  # noqa: F405
    DATABASES["default"]["OPTIONS"]["pool"] = {"min_size": 1, "max_size": 4}  # noqa: F405
