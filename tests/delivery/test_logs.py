"""No plaintext in the logs: neither the payload nor the token (which, with the database and
the keys, would open it) appears in any log record of any logger, whatever happens."""

import logging

import pytest
import time_machine
from django.test import Client

from delivery.services import deliveries_expire_due, delivery_resend

from .conftest import SECRET, token_of

pytestmark = pytest.mark.django_db


def all_logged(caplog) -> str:
    parts = []
    for record in caplog.records:
        parts.append(record.getMessage())
        parts.append(repr(record.__dict__))
    return "\n".join(parts)


def test_no_log_record_holds_a_payload_or_a_token(
    create, telegram, eager_tasks, django_capture_on_commit_callbacks, caplog, settings
):
    settings.DELIVERY_REVEAL_RATE_LIMIT = "5/min"
    caplog.set_level(logging.DEBUG)
    with time_machine.travel("2026-03-02 12:00:10Z", tick=False):
        tokens = []
        with django_capture_on_commit_callbacks(execute=True):
            for method, contact in [("api", ""), ("qr", ""), ("telegram", "5550001")]:
                tokens.append(token_of(create(method=method, contact=contact)))
            tokens.append(token_of(create(method="email", contact="client@example.com")))
            telegram.fail_next(Exception("boom"))  # a failing send logs too
            tokens.append(token_of(create(method="telegram", contact="5550002", purpose="x")))
            tokens.append(
                token_of(delivery_resend(purpose="x", payload="plain " + SECRET, method="api"))
            )
        browser = Client()
        api_token, qr_token = tokens[0], tokens[1]

        browser.get(f"/d/{api_token}", HTTP_USER_AGENT="TelegramBot (like TwitterBot)")
        browser.post(f"/d/{api_token}")  # revealed
        browser.post(f"/d/{api_token}")  # 410
        browser.get(f"/d/{tokens[4]}")  # 410 superseded
        browser.post("/d/" + "Q" * 43)  # 404
        Client(enforce_csrf_checks=True).post(f"/d/{qr_token}")  # 403 CSRF
        browser.post(f"/d/{qr_token}/")  # trailing slash
        browser.post(
            "/api/v1/delivery/reveal/", {"token": tokens[5]}, content_type="application/json"
        )
        limited = browser.post(f"/d/{tokens[3]}")  # over the limit: 429
        deliveries_expire_due()

    assert limited.status_code == 429
    logged = all_logged(caplog)
    assert "delivery" in logged  # the app did log
    assert SECRET not in logged
    for token in tokens:
        assert token not in logged


def test_the_request_log_would_have_shown_the_path_of_any_other_404(client, db, caplog):
    """The control: Django logs 4xx answers with their path; /d/ answers opt out."""
    client.get("/nowhere-" + "Q" * 20)
    client.get("/d/" + "Q" * 43)

    assert "/nowhere-" + "Q" * 20 in caplog.text
    assert "Q" * 43 not in caplog.text


def test_access_log_lines_of_runserver_and_gunicorn_show_no_token(caplog):
    token = "Ab0_" * 10 + "xyz"
    caplog.set_level(logging.INFO)

    logging.getLogger("django.server").info('"%s" %s %s', f"GET /d/{token} HTTP/1.1", 200, 512)
    logging.getLogger("gunicorn.access").info(
        '%(h)s "%(r)s" %(s)s', {"h": "10.0.0.1", "r": f"POST /d/{token}/ HTTP/1.1", "s": "200"}
    )

    assert token not in caplog.text
    assert '"GET /d/<redacted> HTTP/1.1" 200 512' in caplog.text
    assert '10.0.0.1 "POST /d/<redacted>/ HTTP/1.1" 200' in caplog.text


def test_a_failure_on_the_page_is_a_500_page_whose_log_has_no_token(
    client, create, caplog, monkeypatch
):
    from delivery import views

    token = token_of(create())

    def broken(**kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(views, "delivery_view", broken)
    response = client.get(f"/d/{token}")

    assert response.status_code == 500
    assert "Something went wrong" in response.content.decode()
    assert "database went away" in caplog.text
    assert token not in caplog.text
