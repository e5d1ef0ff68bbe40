from django.urls import path
from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
router.register("admin/users", views.AdminUserViewSet, basename="licensing-admin-user")
router.register("licenses/trades", views.TradeViewSet, basename="licensing-trade")
router.register("subscriptions", views.SubscriptionViewSet, basename="subscription")

urlpatterns = [
    path("licenses/validate/", views.ValidateView.as_view(), name="license-validate"),
    path("licenses/public-key/", views.PublicKeyView.as_view(), name="license-public-key"),
    path("licenses/<str:account_id>/file/", views.LicenseFileView.as_view(), name="license-file"),
    path("admin/stats/", views.AdminStatsView.as_view(), name="licensing-admin-stats"),
    path("rate-limit/status/", views.RateLimitStatusView.as_view(), name="rate-limit-status"),
    *router.urls,
]
