"""Settings of the example project: rate limits from ``RATELIMITER``, no database.

``RATELIMIT_STORAGE_URI`` (environment) chooses the store: ``memory://`` (default; each
worker process counts on its own) or ``redis://...`` (shared by every worker and host).
"""

from __future__ import annotations

import os

SECRET_KEY = "example-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
ROOT_URLCONF = "project.urls"
INSTALLED_APPS: list[str] = []
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True
WSGI_APPLICATION = "project.wsgi.application"

MIDDLEWARE = [
    "django.middleware.common.CommonMiddleware",
    "ratelimiter.integrations.django.RateLimitMiddleware",
]

RATELIMITER = {
    "BACKEND": os.environ.get("RATELIMIT_STORAGE_URI", "memory://"),
    # A site-wide ceiling per client, on top of the views' own limits.
    "DEFAULT_LIMITS": "1000/minute",
    "KEY": "ip",
    "EXEMPT_PATHS": ["/health"],
    # An exact sliding log: the example's counts are the same whatever the clock says.
    "ALGORITHM": "sliding_window",
}
