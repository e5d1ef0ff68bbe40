# One image for web, worker and beat (docker-compose.yml picks the command).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .
RUN useradd --create-home --uid 1000 brokerdesk \
    && mkdir -p /app/var /tmp/prometheus \
    && DEBUG=false SECRET_KEY=build-only-collectstatic-key-not-secret-0123456789abcdef \
       ENCRYPTION_KEYS="build:$(python -c 'import base64,os;print(base64.b64encode(os.urandom(32)).decode())')" \
       LICENSE_KEY_PEPPER=build-only-not-secret \
       EMAIL_BACKEND=django.core.mail.backends.dummy.EmailBackend \
       LICENSE_SIGNING_KEY="$(python -c 'import base64,os;print(base64.b64encode(os.urandom(32)).decode())')" \
       python manage.py collectstatic --noinput --verbosity 0 \
    && chown -R brokerdesk /app/var /tmp/prometheus
USER brokerdesk

EXPOSE 8000
CMD ["gunicorn", "config.wsgi:application", "--config", "config/gunicorn.py"]
