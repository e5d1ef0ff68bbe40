"""Keep one-time link tokens out of request logs.

A token in a log is as good as the link while the link lives. Django's own request log is
avoided per response (`delivery.views`); the servers' access logs (runserver's
`django.server`, gunicorn's `gunicorn.access`) write every request line, so their loggers get
this filter (installed by `DeliveryConfig.ready()`), which turns `/d/<token>` into
`/d/<redacted>` in the message and its arguments.
"""

import logging
import re

_LINK = re.compile(r"(/d/)[A-Za-z0-9_\-%.~]{16,}")
REDACTED = r"\1<redacted>"
LOGGERS = ("django.server", "django.request", "gunicorn.access", "gunicorn.error")


def redact(value):
    return _LINK.sub(REDACTED, value) if isinstance(value, str) else value


class RedactLinkTokens(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.msg)
        if isinstance(record.args, dict):
            record.args = {key: redact(value) for key, value in record.args.items()}
        elif isinstance(record.args, tuple):
            record.args = tuple(redact(value) for value in record.args)
        return True


def install() -> None:
    """Add the filter to the request-logging loggers, once."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactLinkTokens) for f in logger.filters):
            logger.addFilter(RedactLinkTokens())
