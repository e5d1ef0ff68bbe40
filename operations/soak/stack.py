"""`make soak`: the product started in the background, the soak run against it, all stopped.

    python -m operations.soak.stack --minutes 5

Needs DATABASE_URL (PostgreSQL) and REDIS_URL. Runs `bootstrap` and `collectstatic`, starts
web (gunicorn with config/gunicorn.py, on 127.0.0.1), a Celery worker and beat with
production settings (DEBUG off, keys generated once into var/soak/keys.env), waits for
/readyz, runs `manage.py soak`, and stops the three whatever happens (their logs stay in
var/soak/<run>/). The exit status is the soak's.

With `--mt5 webapi` the product reaches MT5 through its Web API client: `manage.py
mt5_webapi_standin` is started first on a free loopback port, as one more process, and web,
worker and beat are pointed at it (MT5_GATEWAY, MT5_WEBAPI_URL, MT5_MANAGER_LOGIN/PASSWORD);
the soak turns the stand-in's fault knobs on with the others.

Only the standard library: this starts Django processes, it does not run Django itself.
"""

import argparse
import base64
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOAK_DIR = ROOT / "var" / "soak"
KEYS_FILE = SOAK_DIR / "keys.env"
PYTHON = sys.executable
BIN = Path(PYTHON).parent


class _Process(subprocess.Popen):
    """A child of the soak, with the name its log and messages go by."""

    name: str


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--port", type=int, default=int(os.environ.get("SOAK_PORT", "8765")))
    parser.add_argument(
        "--shared-worker",
        action="store_true",
        help="one worker for every task, the monitor's too (default: the monitor has its own)",
    )
    parser.add_argument(
        "--mt5",
        choices=("simulated", "webapi"),
        default=os.environ.get("SOAK_MT5") or "simulated",
        help="how the product reaches MT5: the simulated server in-process (default), or the "
        "Web API client talking to `manage.py mt5_webapi_standin` started as one more process",
    )
    parser.add_argument("soak_args", nargs="*", help="passed on to manage.py soak (after --)")
    options = parser.parse_args(argv)
    problem = _services_problem()
    if problem:
        _say(f"make soak: {problem}", error=True)
        return 2
    run_dir = SOAK_DIR / datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    run_dir.mkdir(parents=True, exist_ok=True)
    env = _environment(run_dir, options.port, monitor_queue=not options.shared_worker)
    webapi_port = free_port() if options.mt5 == "webapi" else None
    if webapi_port is not None:
        env.update(webapi_environment(webapi_port, env))
    base_url = f"http://127.0.0.1:{options.port}"
    for step in (["bootstrap"], ["collectstatic", "--noinput", "--verbosity", "0"]):
        subprocess.run([PYTHON, "manage.py", *step], cwd=ROOT, env=env, check=True)  # noqa: S603
    processes: list[_Process] = []
    stopping = {"signal": None}

    def stop_on(signum, _frame):
        stopping["signal"] = signum
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, stop_on) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        commands = _commands(options.port, run_dir, monitor_queue=env.get("MONITOR_QUEUE", ""))
        if webapi_port is not None:
            # First, so that the product's first sweep finds its MT5 server listening.
            standin = _start("mt5-webapi", webapi_command(webapi_port), env, run_dir)
            processes.append(standin)
            wait_listening(webapi_port, [standin])
        for name, command in commands.items():
            processes.append(_start(name, command, env, run_dir))
        names = [process.name for process in processes]
        _say(f"make soak: {', '.join(names)} started; logs in {run_dir.relative_to(ROOT)}/")
        _wait_ready(base_url, processes)
        soak = [
            PYTHON,
            "manage.py",
            "soak",
            "--minutes",
            str(options.minutes),
            "--base-url",
            base_url,
            "--logs",
            str(run_dir),
            "--report",
            str(run_dir / "report.md"),
            "--product",
            "web (gunicorn, 2 processes x 4 threads), a Celery worker (concurrency 2)"
            + (
                ", a second one (concurrency 2) for the monitor's queue"
                if "monitor-worker" in commands
                else " for every task, the monitor's too"
            )
            + " and Celery beat, DEBUG off, on PostgreSQL and Redis"
            + (
                "; MT5 through the Web API client, to the Web API stand-in over loopback HTTP"
                if webapi_port is not None
                else "; MT5 the simulated server, in-process"
            ),
            *options.soak_args,
        ]
        return subprocess.run(soak, cwd=ROOT, env=env, check=False).returncode  # noqa: S603
    except KeyboardInterrupt:
        _say(f"make soak: interrupted (signal {stopping['signal'] or 'SIGINT'})", error=True)
        return 130
    except RuntimeError as exc:
        _say(f"make soak: {exc}", error=True)
        return 1
    finally:
        _stop(processes)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _services_problem() -> str:
    database, redis = os.environ.get("DATABASE_URL", ""), os.environ.get("REDIS_URL", "")
    if not database.startswith(("postgres://", "postgresql://")):
        return "set DATABASE_URL to a PostgreSQL database (e.g. postgres://postgres@127.0.0.1/soak)"
    if not redis.startswith("redis://"):
        return "set REDIS_URL (e.g. redis://127.0.0.1:6379/12)"
    return ""


def _keys() -> dict[str, str]:
    """Production keys for the soak's database, made once and kept (0600): rows encrypted in
    one run must open in the next."""
    if not KEYS_FILE.exists():
        SOAK_DIR.mkdir(parents=True, exist_ok=True)
        made = {
            "SECRET_KEY": secrets.token_urlsafe(50),
            "ENCRYPTION_KEYS": "soak1:" + base64.b64encode(os.urandom(32)).decode(),
            "LICENSE_KEY_PEPPER": base64.b64encode(os.urandom(32)).decode(),
            "LICENSE_SIGNING_KEY": base64.b64encode(os.urandom(32)).decode(),
            "METRICS_TOKEN": secrets.token_urlsafe(24),
        }
        fd = os.open(KEYS_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.writelines(f"{name}={value}\n" for name, value in made.items())
    pairs = (line.split("=", 1) for line in KEYS_FILE.read_text().splitlines() if "=" in line)
    return {name: value for name, value in pairs}


def _environment(run_dir: Path, port: int, *, monitor_queue: bool = True) -> dict[str, str]:
    metrics = run_dir / "prometheus"
    metrics.mkdir(exist_ok=True)
    return {
        # The monitor on its own queue and worker, as docs/scaling.md "Queues" deploys it: on
        # one shared worker of two processes, minute-long pool and trading tasks under the
        # faults made most one-second sweeps expire unrun (a deposit waited 75 s, median).
        **({"MONITOR_QUEUE": "monitor"} if monitor_queue else {}),
        **os.environ,
        **_keys(),
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        # Plain HTTP on the loopback: no TLS proxy in front, so no redirect and no Secure
        # cookies (the reveal page's CSRF cookie must come back over http).
        "SECURE_SSL_REDIRECT": "false",
        "SECURE_COOKIES": "false",
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "STATIC_ROOT": str(SOAK_DIR / "static"),
        "EMAIL_BACKEND": "django.core.mail.backends.dummy.EmailBackend",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics),
        "WEB_CONCURRENCY": "2",
        "WEB_THREADS": "4",
        # One client address makes every request: per-address limits would only measure it.
        "DELIVERY_REVEAL_RATE_LIMIT": "100000/min",
        "DELIVERY_VIEW_RATE_LIMIT": "100000/min",
        "LICENSE_PUBLIC_RATE_LIMIT": "100000/min",
        "LICENSE_VALIDATE_RATE_LIMIT_PER_IP": "100000/min",
        # A failed event is retried within half a minute, so a 5-minute run drains in minutes.
        "MONITOR_EVENT_RETRY_MAX_SECONDS": "30",
        "PYTHONUNBUFFERED": "1",
    }


def webapi_environment(port: int, env: dict[str, str]) -> dict[str, str]:
    """What points web, worker, beat and the soak at the Web API stand-in on `port`, the
    manager it serves included (the environment's own, or one made for this run)."""
    return {
        "MT5_GATEWAY": "gateways.mt5.webapi.gateway.WebApiMT5Gateway",
        "MT5_WEBAPI_URL": f"http://127.0.0.1:{port}",
        "MT5_MANAGER_LOGIN": env.get("MT5_MANAGER_LOGIN") or "1000",
        "MT5_MANAGER_PASSWORD": env.get("MT5_MANAGER_PASSWORD") or "Mgr-" + secrets.token_hex(8),
    }


def webapi_command(port: int) -> list[str]:
    """The stand-in, serving the simulated MT5 server's rows; its manager from the env."""
    return [PYTHON, "manage.py", "mt5_webapi_standin", "--port", str(port)]


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_listening(port: int, processes: list[_Process], seconds: float = 60) -> None:
    """Return once 127.0.0.1:`port` accepts; RuntimeError if a process exits or time is up."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for process in processes:
            if process.poll() is not None:
                raise RuntimeError(f"{process.name} exited with {process.returncode}: see its log")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.2)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} within {seconds:.0f} s")


def _commands(port: int, run_dir: Path, *, monitor_queue: str = "") -> dict[str, list[str]]:
    worker = [str(BIN / "celery"), "-A", "config", "worker", "--loglevel", "INFO"]
    monitor = {
        "monitor-worker": [
            *worker,
            "--queues",
            monitor_queue,
            "--concurrency",
            "2",
            "--hostname",
            f"soak-monitor-{port}@%h",
        ]
    }
    return {
        "web": [
            str(BIN / "gunicorn"),
            "config.wsgi:application",
            "--config",
            "config/gunicorn.py",
            "--bind",
            f"127.0.0.1:{port}",
        ],
        "worker": [
            str(BIN / "celery"),
            "-A",
            "config",
            "worker",
            "--loglevel",
            "INFO",
            "--concurrency",
            "2",
            "--hostname",
            f"soak-{port}@%h",
        ],
        **(monitor if monitor_queue else {}),
        "beat": [
            str(BIN / "celery"),
            "-A",
            "config",
            "beat",
            "--loglevel",
            "INFO",
            "--scheduler",
            "django_celery_beat.schedulers:DatabaseScheduler",
            "--pidfile",
            str(run_dir / "beat.pid"),
        ],
    }


def _start(name: str, command: list[str], env: dict, run_dir: Path) -> _Process:
    log = (run_dir / f"{name}.log").open("ab")
    process = _Process(  # our own fixed command
        command,
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: stopped with all its children
    )
    process.name = name
    return process


def _wait_ready(base_url: str, processes: list[_Process], seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for process in processes:
            if process.poll() is not None:
                raise RuntimeError(f"{process.name} exited with {process.returncode}: see its log")
        try:
            with urllib.request.urlopen(f"{base_url}/readyz", timeout=3) as answer:  # noqa: S310
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(1)
    raise RuntimeError(f"web did not answer {base_url}/readyz within {seconds:.0f} s")


def _stop(processes: list[_Process], grace: float = 20) -> None:
    """SIGTERM to each process group, then SIGKILL to what is left after `grace` seconds."""
    for process in processes:
        if process.poll() is None:
            _signal_group(process, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _signal_group(process, signal.SIGKILL)
            process.wait(timeout=10)
    if processes:
        _say(f"make soak: {', '.join(process.name for process in processes)} stopped")


def _signal_group(process: _Process, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)


def _say(text: str, *, error: bool = False) -> None:
    stream = sys.stderr if error else sys.stdout
    stream.write(text + "\n")
    stream.flush()


if __name__ == "__main__":
    sys.exit(main())
