# One image for web, worker, beat and migrate (docker-compose.yml picks the command).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
RUN useradd --create-home --uid 1000 app
COPY pyproject.toml README.md ./
RUN pip install --upgrade pip && pip install -e .
COPY . .
RUN mkdir -p /app/var && chown -R app /app/var \
    && DEBUG=0 SECRET_KEY=build-only-not-secret-build-only-not-secret-build-only python manage.py collectstatic --noinput

USER app
EXPOSE 8000
CMD ["gunicorn", "alignment.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
