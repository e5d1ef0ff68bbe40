from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from . import contract, health, metrics

admin.site.site_header = "Brokerdesk"
admin.site.site_title = "Brokerdesk"
admin.site.index_title = "Back office"

api_v1 = [
    path("", include("accounts.api.urls")),
    path("", include("campaigns.api.urls")),
    path("", include("bonuses.api.urls")),
    path("", include("delivery.api.urls")),
    path("", include("licensing.api.urls")),
    path("", include("demo_pool.api.urls")),
    path("", include("trading_sessions.api.urls")),
]

handler404 = "core.exceptions.page_not_found"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("d/", include("delivery.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/docs/contract/", contract.contract, name="api-contract"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.metrics_view, name="metrics"),
]
