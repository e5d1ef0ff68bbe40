"""Settings of the server `manage.py bench_license` starts: the project's, plus a URLconf with
a trivial view to compare against, a header naming the worker that answered (so the client
can spread its connections), and DEBUG off (as in production: no query log). The validation
rate limits are raised through their environment variables by the command."""

from config.settings import *  # noqa: F403
from config.settings import MIDDLEWARE

ROOT_URLCONF = "bench.license_urls"
DEBUG = False
MIDDLEWARE = ["bench.license_middleware.WorkerPidMiddleware", *MIDDLEWARE]
