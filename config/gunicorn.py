"""gunicorn settings: production (docker-compose's web service, the Dockerfile's CMD) and
`make run` (Procfile.dev), which sets the WEB_* variables for a developer's machine.

Each thread keeps one database connection (reused for DB_CONN_MAX_AGE on PostgreSQL), so a
web process holds at most WEB_CONCURRENCY x WEB_THREADS of them: size PostgreSQL's
max_connections (or the PgBouncer pool) from that, see docs/scaling.md.
"""

import os

bind = os.environ.get("WEB_BIND") or f"0.0.0.0:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "3"))
threads = int(os.environ.get("WEB_THREADS", "2"))
worker_class = "gthread"  # a fixed pool of threads per worker: connections stay bounded
timeout = int(os.environ.get("WEB_TIMEOUT", "30"))
graceful_timeout = 20
keepalive = 5
# Connections waiting for a free thread queue here instead of being refused.
backlog = int(os.environ.get("WEB_BACKLOG", "2048"))
accesslog = "-"
# Access lines print the request line, path, query and Referer: a one-time link's token or a
# key in a query string would land in the log. This logger redacts them (config/logging.py).
logger_class = "config.logging.RedactingGunicornLogger"
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
reload = os.environ.get("WEB_RELOAD", "").lower() in {"1", "true", "yes"}
# gunicorn's runtime control socket (~/.gunicorn/gunicorn.ctl) is one path per user: two
# servers on one machine (make run beside make soak) would take it from each other. Unused
# (a gunicorn 27+ setting; the pinned version has no such socket and ignores the name).
control_socket_disable = True


def child_exit(server, worker):
    # Multi-process Prometheus metrics: forget the files of a worker that is gone.
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
