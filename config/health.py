"""Probes for load balancers and orchestrators: /healthz (the process is up) and /readyz
(database, broker and cache answer, so this process can do its work)."""

from django.http import JsonResponse

from accounts.health import READINESS_CHECKS, run_checks


def healthz(request):
    return JsonResponse({"status": "ok"})


def readyz(request):
    results = run_checks(READINESS_CHECKS)
    ready = all(r.ok for r in results)
    body = {
        "status": "ready" if ready else "not ready",
        "checks": {r.name: {"ok": r.ok, "detail": r.detail, "ms": r.ms} for r in results},
    }
    return JsonResponse(body, status=200 if ready else 503)
