"""Response headers set in one place for the whole site."""

# The answers that can carry a secret: the API (license keys on create, one-time links on
# activate and resend, JWTs, revealed payloads) and the one-time link pages.
_PRIVATE_PREFIXES = ("/api/", "/d/")
# Static descriptions of the API, the same for everyone: a cache may keep them.
_PUBLIC_PATHS = ("/api/schema/", "/api/docs/")


class NoStoreMiddleware:
    """`Cache-Control: no-store` and `Pragma: no-cache` on every answer under `/api/` and
    `/d/`, unless the view chose its own Cache-Control: no browser, proxy or CDN keeps a
    copy of an answer that held a key, a link or a token."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        path = request.path_info
        if (
            path.startswith(_PRIVATE_PREFIXES)
            and not path.startswith(_PUBLIC_PATHS)
            and not response.has_header("Cache-Control")
        ):
            response["Cache-Control"] = "no-store"
            response["Pragma"] = "no-cache"
        return response
