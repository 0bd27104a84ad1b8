"""ASGI entry point: ``gunicorn -k uvicorn_worker.UvicornWorker shop.asgi:application`` in
production, ``uvicorn shop.asgi:application`` by hand (``manage.py serve`` builds the same).

HTTP runs through Django's WSGI handler on ``WEB_THREADS`` threads, which bounds database
connections per process; see ``shop/server.py`` for why not Django's ASGI handler.
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")

from shop.access_log import install_uvicorn_redaction  # noqa: E402
from shop.server import build_application  # noqa: E402

# gunicorn's uvicorn workers (docker-compose.yml) load this module, not ``serve``'s server.
install_uvicorn_redaction()
application = build_application()
