"""ASGI entry point: ``uvicorn shop.asgi:application`` (``manage.py serve`` builds the same).

HTTP runs through Django's WSGI handler on ``WEB_THREADS`` threads, which bounds database
connections per process; see ``shop/server.py`` for why not Django's ASGI handler.
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")

from shop.server import build_application  # noqa: E402

application = build_application()
