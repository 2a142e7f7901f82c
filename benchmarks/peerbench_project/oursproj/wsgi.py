from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "oursproj.settings")
application = get_wsgi_application()

if os.environ.get("PEERBENCH_OURS_LOCKPROBE"):  # measuring SQLite's write lock (lockprobe.py)
    from oursproj import lockprobe

    lockprobe.install(os.environ["PEERBENCH_OURS_LOCKPROBE"])
