from celery import shared_task

from .services import campaigns_end_expired


@shared_task(name="campaigns.end_expired")
def end_expired() -> int:
    """Mark active and paused campaigns past their ends_at as ended; return how many."""
    return campaigns_end_expired()
