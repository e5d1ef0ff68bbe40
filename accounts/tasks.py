import logging

from celery import shared_task
from django.core.cache import cache
from django.utils import timezone

from accounts.health import HEARTBEAT_CACHE_KEY

logger = logging.getLogger(__name__)


@shared_task(name="accounts.heartbeat")
def heartbeat() -> str:
    """Beat -> broker -> worker works: say so in the log and leave the time in the cache."""
    now = timezone.now().isoformat()
    cache.set(HEARTBEAT_CACHE_KEY, now, timeout=None)
    logger.info("heartbeat", extra={"at": now})
    return now
