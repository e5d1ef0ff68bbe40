"""Run the MT5 Web API stand-in on a free loopback port for a test.

    running_standin(*, manager_login=1000, manager_password="Password1", tls=False,
                    time_offset_seconds=0, groups=("demo\\\\standard",), **kwargs)
        -> context manager yielding (url, server)

`url` is "http://127.0.0.1:<port>" (TLS: "https://localhost:<port>", trust
`server.cafile` or pin `server.certificate_pem`); `server` is the `MT5WebAPIStandIn`
(`server.manager_login`, `server.time_offset_seconds`, ...). Any other keyword goes to its
constructor (`srv_rand=`, `clock=`, `idle_timeout_seconds=`, `handshake_window_seconds=`).

The server answers on its own threads with their own database connections: use it in tests
marked `@pytest.mark.django_db(transaction=True)` so it sees what the test wrote.
"""

from contextlib import contextmanager

from gateways.mt5.webapi.standin import MT5WebAPIStandIn

MANAGER_LOGIN = 1000
MANAGER_PASSWORD = "Password1"  # the spec's test vector password


@contextmanager
def running_standin(
    *,
    manager_login: int = MANAGER_LOGIN,
    manager_password: str = MANAGER_PASSWORD,
    tls: bool = False,
    time_offset_seconds: int = 0,
    groups: tuple[str, ...] = ("demo\\standard",),
    **kwargs,
):
    server = MT5WebAPIStandIn(
        "127.0.0.1",
        0,
        manager_login=manager_login,
        manager_password=manager_password,
        tls=tls,
        time_offset_seconds=time_offset_seconds,
        groups=groups,
        **kwargs,
    )
    server.start()
    try:
        yield server.url, server
    finally:
        server.stop()
