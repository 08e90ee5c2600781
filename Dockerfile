# The production image: gunicorn serves the site, and the same image runs
# migrations, the Celery worker and beat with other commands. Static files are
# collected at build time and served by WhiteNoise. docker-compose.yml shows
# how the processes fit together.

# Front-end packages (htmx) come from npm, not a CDN.
FROM node:20-bookworm-slim AS assets
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONPATH=/app \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=rm6.settings.production

WORKDIR /app

# Dependencies first, in a layer of their own that changes only with
# pyproject.toml. The project runs from /app (PYTHONPATH), not from an
# installed copy, because its templates are not package data.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

COPY --from=assets /app/node_modules ./node_modules
COPY . .

# collectstatic reads the production settings, which require these three;
# the values exist only for this step and connect to nothing.
RUN DJANGO_SECRET_KEY=collectstatic-only \
    DATABASE_URL=postgres://build@localhost/build \
    REDIS_URL=redis://localhost:6379/0 \
    python manage.py collectstatic --noinput

RUN useradd --system --uid 10001 --home-dir /app rm6 \
    && mkdir -p /app/var/media /app/var/beat \
    && chown -R rm6:rm6 /app/var/media /app/var/beat
USER rm6

EXPOSE 8000

# WEB_CONCURRENCY sets gunicorn's worker count (gunicorn reads it itself).
CMD ["gunicorn", "rm6.wsgi:application", "--bind", "0.0.0.0:8000", "--access-logfile", "-"]
