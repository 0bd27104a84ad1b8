# Kami production image: gunicorn serving the shop, the admin, the API and the WebSockets
# (the ASGI app, shop.asgi, in uvicorn workers: HTTP on WEB_THREADS threads per worker).
# The same image runs the Celery worker and beat (see docker-compose.yml).
FROM python:3.11-slim

# KAMI_VAR_DIR: var/ holds the collected static files (and nothing else in production).
# WEB_CONCURRENCY: gunicorn's worker count; override per host (about 2 x CPU cores + 1).
# WEB_THREADS: request threads, hence PostgreSQL connections, per worker (shop/server.py).
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    KAMI_VAR_DIR=/app/var \
    WEB_CONCURRENCY=3 \
    WEB_THREADS=4

RUN groupadd --system --gid 1000 kami \
 && useradd --system --uid 1000 --gid kami --home-dir /app --no-create-home \
      --shell /usr/sbin/nologin kami

WORKDIR /app
COPY . /app

# Editable install on purpose: settings find templates/ and static/ next to the code
# (BASE_DIR), so every entry point (manage.py, gunicorn, celery) must import the packages
# from /app, not from a copy in site-packages. No dev extras.
RUN pip install -e .

# The translations: .po files are committed, their compiled .mo built here (msgfmt comes with
# gettext, needed only for this step and removed again).
RUN apt-get update \
 && apt-get install --yes --no-install-recommends gettext \
 && DEBUG=0 SECRET_KEY=build-only-not-a-secret \
    CARDKEY_ENCRYPTION_KEY=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= \
    python manage.py compilemessages --ignore='.venv/*' \
 && apt-get purge --yes --auto-remove gettext \
 && rm -rf /var/lib/apt/lists/*

# Static files are collected at build time. DEBUG=0 selects WhiteNoise's compressed manifest
# storage; the secrets below are throw-away values that exist only for this one command and
# are not kept in the image's environment.
RUN DEBUG=0 \
    SECRET_KEY=build-only-not-a-secret \
    CARDKEY_ENCRYPTION_KEY=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= \
    python manage.py collectstatic --noinput \
 && chown -R kami:kami /app/var

USER kami
EXPOSE 8000

# Workers: WEB_CONCURRENCY (above). No control socket: $HOME (/app) is read-only for kami.
CMD ["gunicorn", "shop.asgi:application", "--worker-class", "uvicorn_worker.UvicornWorker", \
     "--bind", "0.0.0.0:8000", \
     "--access-logfile", "-", "--logger-class", "shop.access_log.RedactingGunicornLogger", \
     "--timeout", "30", "--graceful-timeout", "30", \
     "--no-control-socket"]
