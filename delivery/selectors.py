"""Reads of the delivery app that are more than one queryset."""

from dataclasses import dataclass

from django.db.models import Count, Prefetch, Q, QuerySet

from delivery.models import Delivery, DeliveryAttempt


def delivery_list() -> QuerySet[Delivery]:
    """Deliveries with their attempt log, oldest attempt first (one query for all attempts)."""
    return Delivery.objects.defer("payload", "pending_link").prefetch_related(
        Prefetch("attempts", queryset=DeliveryAttempt.objects.order_by("at", "id"))
    )


@dataclass(frozen=True)
class DeliveryStats:
    """Counts by (method, status) and how many reached their recipient, per method.

    Success rate: deliveries the channel carried (`sent_at` set; api and qr at once) over
    those it carried or failed. `None` while nothing has been tried.
    """

    counts: dict[tuple[str, str], int]
    delivered: dict[str, int]

    def count(self, *, method: str | None = None, status: str | None = None) -> int:
        return sum(
            n
            for (m, s), n in self.counts.items()
            if (method is None or m == method) and (status is None or s == status)
        )

    def success_rate(self, method: str | None = None) -> float | None:
        delivered = sum(n for m, n in self.delivered.items() if method is None or m == method)
        tried = delivered + self.count(method=method, status=Delivery.Status.FAILED)
        return delivered / tried if tried else None


def delivery_stats() -> DeliveryStats:
    """One query: every (method, status) count, and the delivered count per method."""
    rows = (
        Delivery.objects.order_by()
        .values("method", "status")
        .annotate(n=Count("id"), delivered=Count("id", filter=Q(sent_at__isnull=False)))
    )
    counts: dict[tuple[str, str], int] = {}
    delivered: dict[str, int] = {}
    for row in rows:
        counts[(row["method"], row["status"])] = row["n"]
        delivered[row["method"]] = delivered.get(row["method"], 0) + row["delivered"]
    return DeliveryStats(counts=counts, delivered=delivered)
