#!/usr/bin/env python
"""Django's command-line utility for the rate-limited example project.

    python examples/django_project/manage.py runserver 8000
    RATELIMIT_STORAGE_URI=redis://127.0.0.1:6379/0 \\
        gunicorn -w 2 --chdir examples/django_project project.wsgi
"""

from __future__ import annotations

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
