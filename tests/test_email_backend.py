"""Email with DEBUG off (issue 14): the console backend printed one-time links into the worker
log. Production now refuses to start without a real email backend, sends through SMTP when
EMAIL_HOST is set, keeps a console/locmem/dummy backend only when EMAIL_BACKEND names it, and
`doctor` says which backend is in use.
"""

import base64
import json
import os
import socketserver
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from django.core.management import call_command

ROOT = Path(__file__).resolve().parent.parent
# Made for these tests only: random bytes, never used anywhere else.
PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": base64.b64encode(os.urandom(40)).decode(),
    "ALLOWED_HOSTS": "backoffice.example.com",
    "ENCRYPTION_KEYS": "k9:" + base64.b64encode(os.urandom(32)).decode(),
    "LICENSE_KEY_PEPPER": base64.b64encode(os.urandom(32)).decode(),
    "LICENSE_SIGNING_KEY": base64.b64encode(os.urandom(32)).decode(),
    # Set, empty: a developer's .env (read without overwriting) cannot fill them in.
    "EMAIL_BACKEND": "",
    "EMAIL_HOST": "",
    "EMAIL_USE_TLS": "",
    "EMAIL_USE_SSL": "",
}
SHOW = """
import json
import django
django.setup()
from django.conf import settings
names = ["EMAIL_BACKEND", "EMAIL_HOST", "EMAIL_PORT", "EMAIL_HOST_USER", "EMAIL_USE_TLS",
         "EMAIL_USE_SSL", "EMAIL_TIMEOUT", "DEFAULT_FROM_EMAIL"]
print(json.dumps({name: getattr(settings, name) for name in names}))
"""


def run(code: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", **PRODUCTION, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def email_settings(**env) -> dict:
    result = run(SHOW, **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_production_refuses_to_start_with_no_email_backend_configured():
    result = run(SHOW)

    assert result.returncode != 0
    assert "ImproperlyConfigured: EMAIL_HOST must be set when DEBUG is off" in result.stderr
    assert "EMAIL_BACKEND" in result.stderr  # the other way out is named too


def test_production_with_an_email_host_sends_through_smtp_with_its_settings():
    seen = email_settings(
        EMAIL_HOST="smtp.example.com",
        EMAIL_PORT="587",
        EMAIL_HOST_USER="mailer",
        EMAIL_HOST_PASSWORD="not-printed",
        EMAIL_USE_TLS="true",
        EMAIL_TIMEOUT_SECONDS="7",
        DEFAULT_FROM_EMAIL="Brokerdesk <no-reply@example.com>",
    )

    assert seen == {
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "smtp.example.com",
        "EMAIL_PORT": 587,
        "EMAIL_HOST_USER": "mailer",
        "EMAIL_USE_TLS": True,
        "EMAIL_USE_SSL": False,
        "EMAIL_TIMEOUT": 7,
        "DEFAULT_FROM_EMAIL": "Brokerdesk <no-reply@example.com>",
    }


def test_production_keeps_a_console_backend_only_when_email_backend_names_it():
    console = "django.core.mail.backends.console.EmailBackend"

    assert email_settings(EMAIL_BACKEND=console)["EMAIL_BACKEND"] == console


def test_with_debug_on_and_nothing_set_email_goes_to_the_console_as_before():
    seen = email_settings(DEBUG="true")

    assert seen["EMAIL_BACKEND"] == "django.core.mail.backends.console.EmailBackend"


def test_tls_and_ssl_together_are_refused_at_start_not_at_the_first_send():
    result = run(SHOW, EMAIL_HOST="smtp.example.com", EMAIL_USE_TLS="true", EMAIL_USE_SSL="true")

    assert result.returncode != 0
    assert "EMAIL_USE_TLS and EMAIL_USE_SSL are exclusive" in result.stderr


# --- A one-time link sent by email reaches the SMTP server, not the log ----------------------


class StandInSMTP(socketserver.StreamRequestHandler):
    """Just enough SMTP for smtplib: every command accepted, each message kept."""

    def reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self):
        self.reply("220 stand-in ESMTP")
        lines, in_data = [], False
        for raw in self.rfile:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if in_data:
                if line == ".":
                    self.server.messages.append("\n".join(lines))
                    lines, in_data = [], False
                    self.reply("250 queued")
                else:
                    lines.append(line[1:] if line.startswith("..") else line)
                continue
            verb = line[:4].upper()
            if verb == "DATA":
                in_data = True
                self.reply("354 end with <CRLF>.<CRLF>")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:  # EHLO, MAIL FROM, RCPT TO, RSET, NOOP
                self.reply("250 ok")


@pytest.fixture
def smtp_server():
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), StandInSMTP)
    server.daemon_threads = True
    server.messages = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


SEND_LINK = """
import django
django.setup()
from django.utils import timezone
from delivery.models import Delivery
from delivery.channels.email import send as _send_email

delivery = Delivery(contact="client@example.com", expires_at=timezone.now())
_send_email(delivery, "https://backoffice.example.com/d/" + "T" * 43)
print("sent")
"""


def test_in_production_a_one_time_link_email_goes_to_the_smtp_server_and_not_the_log(
    smtp_server,
):
    port = smtp_server.server_address[1]
    result = run(SEND_LINK, EMAIL_HOST="127.0.0.1", EMAIL_PORT=str(port))

    assert result.returncode == 0, result.stderr
    assert len(smtp_server.messages) == 1
    assert "/d/" + "T" * 43 in smtp_server.messages[0]
    assert "client@example.com" in smtp_server.messages[0]
    assert "T" * 43 not in result.stdout + result.stderr  # nothing printed the link


# --- doctor ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_doctor_says_which_smtp_server_sends_the_email(settings, capsys):
    settings.DEBUG = True
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "smtp.example.com", 587
    settings.EMAIL_USE_TLS, settings.EMAIL_HOST_USER = True, "mailer"

    call_command("doctor")

    out = capsys.readouterr().out
    assert "ok   email          SMTP smtp.example.com:587 (STARTTLS, user mailer)" in out


@pytest.mark.django_db
def test_doctor_warns_of_a_console_backend_with_debug_off_without_failing(settings, capsys):
    settings.DEBUG = False
    settings.SECRET_KEY = base64.b64encode(os.urandom(40)).decode()  # a production-like key
    settings.EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"

    call_command("doctor")

    out = capsys.readouterr().out
    assert "WARN email          console backend with DEBUG off" in out
    assert "never sent" in out and "token redacted" in out
    assert "all checks passed" in out  # an operator's explicit choice, said, not refused
