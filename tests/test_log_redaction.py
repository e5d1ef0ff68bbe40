"""Issue 14: one-time-link tokens reached the log. A HEAD or OPTIONS on `/d/<token>` (link
preview bots send HEAD) put the full path in the `request` field of the JSON line. Every
field of every record is redacted now; the log of a full flow holds none of its secrets."""

import io
import json
import logging
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils.module_loading import import_string
from gunicorn.config import Config

from tests.demo_pool.conftest import _demo_settings, fill, pool_config  # noqa: F401
from tests.licensing.conftest import _licensing_settings, _plans  # noqa: F401
from tests.secret_flow import secret_flow

LOGGERS = ("", "django", "django.request", "django.server", "gunicorn.access", "gunicorn.error")


@pytest.fixture
def json_log():
    """Everything logged, at DEBUG, through the formatter the LOGGING setting names."""
    spec = settings.LOGGING["formatters"][settings.LOGGING["handlers"]["stdout"]["formatter"]]
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(import_string(spec["()"])())
    handler.setLevel(logging.DEBUG)
    saved = []
    for name in LOGGERS:
        logger = logging.getLogger(name)
        saved.append((logger, logger.level))
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    yield stream
    for logger, level in saved:
        logger.removeHandler(handler)
        logger.setLevel(level)


@pytest.mark.django_db
def test_the_log_of_a_full_flow_holds_none_of_its_secrets(
    json_log,
    make_user,
    pool_config,  # noqa: F811
    fill,  # noqa: F811
):
    flow = secret_flow(make_user, pool_config=pool_config, fill=fill)

    text = json_log.getvalue()
    lines = text.splitlines()
    assert lines and all(json.loads(line) for line in lines)  # still one JSON object a line
    head = [json.loads(line) for line in lines if "(HEAD)" in line]
    assert head and "request" in head[0]  # the line that leaked: it is there, redacted
    assert "/d/<redacted>" in head[0]["request"]
    leaked = {name: secret for name, secret in flow.secrets.items() if secret in text}
    assert leaked == {}


def _record(msg="%s", *args, **extra):
    record = logging.LogRecord("brokerdesk", logging.WARNING, __file__, 1, msg, args, None)
    record.__dict__.update(extra)
    return record


def _format(record) -> dict:
    formatter = import_string(settings.LOGGING["formatters"]["json"]["()"])()
    return json.loads(formatter.format(record))


class _Request:
    def __str__(self):
        return "<WSGIRequest: HEAD '/d/Zm9vYmFyYmF6cXV4cXV1eHF1dXhxdXV4cXV1eHF1dXg'>"


JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ0b2tlbl90eXBlIjoiYWNjZXNzIiwidXNlcl9pZCI6MX0"
    ".c2lnbmF0dXJlLW9mLXRoZS10b2tlbg"
)
LICENSE = "QT-7K2M-9XQD-4TNB-HW3R-PZ8C-VJ6F"
API_KEY = "0a1b2c3d4e5f.Zq8Vxk3mP1rT9sLw2bN6yH4cJ7dF0gA5eU"


@pytest.mark.parametrize(
    ("extra", "secret"),
    [
        ({"request": _Request()}, "Zm9vYmFyYmF6cXV4cXV1eHF1dXhxdXV4cXV1eHF1dXg"),
        ({"headers": {"Authorization": f"Bearer {JWT}"}}, JWT),
        ({"meta": {"HTTP_AUTHORIZATION": f"Api-Key {API_KEY}"}}, API_KEY.split(".")[1]),
        ({"body": {"nested": [{"refresh": "opaque-refresh-value"}]}}, "opaque-refresh-value"),
        ({"body": '{"license_key": "anything-at-all", "x": 1}'}, "anything-at-all"),
        ({"query": "next=%2Fd%2FZm9vYmFyYmF6cXV4cXV1eHF1"}, "Zm9vYmFyYmF6cXV4cXV1eHF1"),
        ({"url": "/api/v1/x/?password=hunter2hunter2&page=2"}, "hunter2hunter2"),
        ({"form": "email=a%40b.c&token=tok-abc-123"}, "tok-abc-123"),
        ({"password": "plain-password-field"}, "plain-password-field"),
        ({"key": LICENSE.lower().replace("-", "")}, LICENSE.lower().replace("-", "")),
        ({"note": f"issued {LICENSE} to ACC1"}, LICENSE),
        ({"error": f"401 for {JWT[:60]}.{JWT.split('.')[2]}"}, JWT.split(".")[2]),
        ({"seen": (API_KEY, 3)}, API_KEY.split(".")[1]),
        ({"X-License-Key": LICENSE}, LICENSE),
    ],
)
def test_every_field_is_redacted_by_name_and_by_shape(extra, secret):
    entry = _format(_record("event", **extra))

    assert secret not in json.dumps(entry)
    assert "<redacted>" in json.dumps(entry)


def test_the_message_its_arguments_and_the_traceback_are_redacted():
    try:
        raise ValueError(f"bad key {LICENSE}")
    except ValueError:
        import sys

        record = _record("reveal of /d/%s failed for %s", "A" * 43, JWT)
        record.exc_info = sys.exc_info()

    entry = _format(record)

    text = json.dumps(entry)
    assert "A" * 43 not in text and JWT not in text and LICENSE not in text
    assert entry["msg"].startswith("reveal of /d/<redacted> failed for <redacted>")


def test_ordinary_words_and_numbers_stay_readable():
    entry = _format(
        _record(
            "press passes: %d, basic plan, token expired, key rotation done",
            12,
            login=70000003,
            took=timedelta(seconds=2),
            path="/api/v1/demo/pool/status/",
        )
    )

    assert entry["msg"] == "press passes: 12, basic plan, token expired, key rotation done"
    assert entry["login"] == 70000003 and entry["took"] == "0:00:02"
    assert entry["path"] == "/api/v1/demo/pool/status/"


class _Response:
    status = "200 OK"
    sent = 512
    headers = [("Content-Type", "text/html")]


def test_gunicorns_access_log_shows_no_token_key_or_credential():
    """config/gunicorn.py's logger class, on a request line, query, Referer and headers."""
    import config.gunicorn as gunicorn_settings

    cfg = Config()
    cfg.set("logger_class", gunicorn_settings.logger_class)
    cfg.set(
        "access_log_format",
        '%(h)s "%(r)s" %(s)s %(U)s %(q)s "%(f)s" %({authorization}i)s %({x-license-key}i)s',
    )
    cfg.set("accesslog", "-")
    access = cfg.logger_class(cfg)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logging.getLogger("gunicorn.access").addHandler(handler)
    token = "Tq3" * 14 + "x"
    environ = {
        "REMOTE_ADDR": "10.0.0.1",
        "REQUEST_METHOD": "HEAD",
        "RAW_URI": f"/d/{token}?api_key={API_KEY}",
        "PATH_INFO": f"/d/{token}",
        "QUERY_STRING": f"api_key={API_KEY}",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_REFERER": f"https://mail.example/?next=%2Fd%2F{token}",
    }
    headers = [("Authorization", f"Bearer {JWT}"), ("X-License-Key", LICENSE)]
    try:
        access.access(_Response(), headers, environ, timedelta(milliseconds=3))
    finally:
        logging.getLogger("gunicorn.access").removeHandler(handler)

    line = stream.getvalue()
    assert line.startswith('10.0.0.1 "HEAD /d/<redacted>')
    for secret in (token, API_KEY.split(".")[1], JWT, LICENSE):
        assert secret not in line
