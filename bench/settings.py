"""Settings for the benchmark server only: production settings plus the baseline view's URL.

bench/run.sh serves `core.wsgi` with DJANGO_SETTINGS_MODULE=bench.settings, so the API and the
baseline answer from the same gunicorn workers; production never imports this module.
"""

from core.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
