"""The four channels: Telegram and email sent by a worker after commit (retries on transient
errors only), api and qr answered to the caller."""

import smtplib

import pytest
import responses
from django.core import mail

from delivery import tasks
from delivery.channels.email import email_error as _email_error
from delivery.models import Delivery
from delivery.services import delivery_reveal, delivery_send
from gateways.errors import PermanentGatewayError, TransientGatewayError, UnknownOutcomeError
from gateways.loading import reset_gateways
from gateways.telegram import get_telegram_gateway

from .conftest import BASE_URL, PAYLOAD, SECRET, token_of
from .qr_decode import decode_svg

pytestmark = pytest.mark.django_db


def sent_now(create, django_capture_on_commit_callbacks, **fields):
    """Create a delivery and run what its commit queues (the send, eagerly)."""
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        result = create(**fields)
    return result, callbacks


def test_telegram_sends_the_link_with_previews_off_and_content_protected(
    create, telegram, eager_tasks, django_capture_on_commit_callbacks
):
    result, callbacks = sent_now(
        create, django_capture_on_commit_callbacks, method="telegram", contact="5550001"
    )

    assert len(callbacks) == 1
    [(chat_id, text)] = telegram.sent()
    assert chat_id == "5550001"
    assert result.link in text
    assert SECRET not in text
    [call] = telegram.calls
    assert call["disable_link_preview"] is True
    assert call["protect_content"] is True
    delivery = Delivery.objects.get(pk=result.delivery.pk)
    assert (delivery.status, delivery.send_attempts, delivery.pending_link) == ("sent", 1, None)
    assert delivery.sent_at is not None
    assert delivery_reveal(token=token_of(result), ip=None).payload == PAYLOAD


def test_the_send_is_queued_only_when_the_delivery_is_committed(
    create, telegram, eager_tasks, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        create(method="telegram", contact="5550001")
        assert telegram.sent() == []
    assert len(callbacks) == 1
    callbacks[0]()
    assert len(telegram.sent()) == 1


def test_the_http_telegram_client_asks_for_no_preview_and_protected_content(settings):
    settings.TELEGRAM_GATEWAY = "gateways.telegram.http.HttpTelegramGateway"
    settings.TELEGRAM_API_URL = "https://telegram.test"
    settings.TELEGRAM_BOT_TOKEN = "123:TOKEN"
    reset_gateways()
    with responses.RequestsMock() as mocked:
        mocked.post(
            "https://telegram.test/bot123:TOKEN/sendMessage",
            json={"ok": True, "result": {"message_id": 77}},
        )
        message_id = get_telegram_gateway().send_message(
            chat_id="5550001", text="link", disable_link_preview=True, protect_content=True
        )
        body = mocked.calls[0].request.body
    reset_gateways()

    import json

    assert message_id == 77
    assert json.loads(body) == {
        "chat_id": "5550001",
        "text": "link",
        "link_preview_options": {"is_disabled": True},
        "protect_content": True,
    }


def test_email_sends_a_text_and_an_html_body_with_the_link(
    create, eager_tasks, django_capture_on_commit_callbacks
):
    result, _ = sent_now(
        create, django_capture_on_commit_callbacks, method="email", contact="client@example.com"
    )

    [message] = mail.outbox
    assert message.to == ["client@example.com"]
    assert result.link in message.body
    [(html, mimetype)] = message.alternatives
    assert mimetype == "text/html"
    assert f'href="{result.link}"' in html
    assert SECRET not in message.body + html
    assert Delivery.objects.get(pk=result.delivery.pk).status == "sent"


def test_api_answers_with_the_link(create):
    result = create(method="api")

    assert result.link.startswith(f"{BASE_URL}/d/")
    assert result.qr_svg is None
    assert delivery_reveal(token=token_of(result), ip=None).payload == PAYLOAD


def test_qr_answers_with_an_svg_that_decodes_back_to_the_link_and_a_png(create):
    result = create(method="qr")

    assert (
        result.qr_svg.startswith("<svg") and 'xmlns="http://www.w3.org/2000/svg"' in result.qr_svg
    )
    assert decode_svg(result.qr_svg) == result.link
    assert result.qr_png.startswith(b"\x89PNG\r\n\x1a\n")
    assert result.qr_png_data_uri.startswith("data:image/png;base64,")
    assert Delivery.objects.get(pk=result.delivery.pk).status == "sent"


def test_a_permanent_refusal_fails_the_delivery_at_once(create, telegram):
    result = create(method="telegram", contact="5550001")
    telegram.fail_next(PermanentGatewayError("Bad Request: chat not found", gateway="telegram"))

    assert tasks.send_telegram.apply(args=[result.delivery.pk]).get() == "failed"

    assert len(telegram.calls) == 1
    row = Delivery.objects.filter(pk=result.delivery.pk).values().get()
    assert (row["status"], row["last_error"]) == ("failed", "Bad Request: chat not found")
    assert (row["payload"], row["pending_link"]) == (None, None)


def test_transient_errors_are_retried_until_the_send_goes_through(create, telegram):
    result = create(method="telegram", contact="5550001")
    telegram.fail_next(TransientGatewayError("429 Too Many Requests", gateway="telegram"), 2)

    tasks.send_telegram.apply(args=[result.delivery.pk])

    assert len(telegram.calls) == 3
    assert len(telegram.sent()) == 1
    delivery = Delivery.objects.get(pk=result.delivery.pk)
    assert (delivery.status, delivery.send_attempts, delivery.last_error) == ("sent", 3, "")


def test_a_send_that_runs_out_of_retries_fails_the_delivery(create, telegram, monkeypatch):
    monkeypatch.setattr(tasks.send_telegram, "max_retries", 2)
    result = create(method="telegram", contact="5550001")
    telegram.fail_next(UnknownOutcomeError("timeout", gateway="telegram"), 10)

    tasks.send_telegram.apply(args=[result.delivery.pk])

    assert len(telegram.calls) == 3  # the first try and two retries
    delivery = Delivery.objects.get(pk=result.delivery.pk)
    assert (delivery.status, delivery.send_attempts) == ("failed", 3)
    assert "timeout" in delivery.last_error


def test_an_unexpected_error_is_not_retried_and_fails_the_delivery(create, telegram):
    result = create(method="telegram", contact="5550001")
    telegram.fail_next(RuntimeError("bug"))

    tasks.send_telegram.apply(args=[result.delivery.pk])

    assert len(telegram.calls) == 1
    assert Delivery.objects.get(pk=result.delivery.pk).status == "failed"


def test_a_delivery_superseded_or_already_sent_is_not_sent_again(create, telegram):
    from delivery.services import delivery_resend

    first = create(method="telegram", contact="5550001", purpose="p")
    delivery_resend(purpose="p", payload="new", method="api")
    second = create(method="telegram", contact="5550002", purpose="q")

    assert delivery_send(delivery_id=first.delivery.pk) == "superseded"
    assert delivery_send(delivery_id=second.delivery.pk) == "sent"
    assert delivery_send(delivery_id=second.delivery.pk) == "sent"
    assert delivery_send(delivery_id=999_999) == "missing"
    assert len(telegram.sent()) == 1


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (smtplib.SMTPRecipientsRefused({"a@b.c": (550, b"no such user")}), PermanentGatewayError),
        (smtplib.SMTPRecipientsRefused({"a@b.c": (450, b"mailbox busy")}), TransientGatewayError),
        (smtplib.SMTPServerDisconnected("gone"), TransientGatewayError),
        (smtplib.SMTPConnectError(421, b"busy"), TransientGatewayError),
        (smtplib.SMTPDataError(451, b"try later"), TransientGatewayError),
        (smtplib.SMTPDataError(554, b"rejected"), PermanentGatewayError),
        (ConnectionRefusedError(111, "refused"), TransientGatewayError),
        (TimeoutError("timed out"), TransientGatewayError),
    ],
)
def test_smtp_errors_keep_their_meaning_for_retries(error, kind):
    assert type(_email_error(error)) is kind


def test_an_email_the_server_cannot_take_now_is_retried(create, monkeypatch):
    result = create(method="email", contact="client@example.com")
    failures = iter([smtplib.SMTPServerDisconnected("gone")])

    real_send = mail.EmailMultiAlternatives.send

    def flaky_send(self, *args, **kwargs):
        error = next(failures, None)
        if error is not None:
            raise error
        return real_send(self, *args, **kwargs)

    monkeypatch.setattr(mail.EmailMultiAlternatives, "send", flaky_send)

    tasks.send_email.apply(args=[result.delivery.pk])

    assert len(mail.outbox) == 1
    assert Delivery.objects.get(pk=result.delivery.pk).send_attempts == 2
