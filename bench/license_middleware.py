"""A middleware of the license bench's server only: names the worker process that answered
(`X-Bench-Worker: <pid>`), so the load client can spread its keep-alive connections evenly
over the workers. Outermost, and the same for both endpoints measured."""

import os


class WorkerPidMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response["X-Bench-Worker"] = str(os.getpid())
        return response
