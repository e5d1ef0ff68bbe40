"""URLconf of the benchmark server only: the project's URLs plus a trivial DRF view.

The trivial view sits under the API prefix so it passes the same middleware as validation
(metrics, usage log); it neither authenticates, limits nor parses: constant JSON.
"""

from django.urls import include, path
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

TRIVIAL_PATH = "api/v1/bench/trivial/"


class TrivialView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []

    def post(self, request):
        return Response({"ok": True, "code": "TRIVIAL"})


urlpatterns = [
    path(TRIVIAL_PATH, TrivialView.as_view(), name="bench-trivial"),
    path("", include("config.urls")),
]
