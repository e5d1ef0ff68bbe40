"""The soak: the running product driven for minutes under faults, then its invariants checked.

`manage.py soak` starts nothing: web, worker and beat run already (`make soak` starts them on
PostgreSQL and Redis, `stack.py`). It sets up a world through the API and the simulated
servers (`world`), turns the simulated servers' fault knobs on, drives a realistic mix over
HTTP for the given minutes (`workload`), lets the workers drain (`drain`), restores the knobs,
checks what must hold (`invariants`), scans a database dump and the process logs for the
secrets it made (`scan`), and prints a report (`report`).
"""
