from django.urls import path
from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
router.register("monitoring/accounts", views.MonitoredAccountViewSet, basename="monitoring-account")

urlpatterns = [
    path("auth/token/", views.LoginView.as_view(), name="auth-token"),
    path("auth/token/refresh/", views.RefreshView.as_view(), name="auth-token-refresh"),
    path("auth/logout/", views.LogoutView.as_view(), name="auth-logout"),
    path("auth/register/", views.RegisterView.as_view(), name="auth-register"),
    path("auth/me/", views.MeView.as_view(), name="auth-me"),
    path("auth/password/", views.PasswordChangeView.as_view(), name="auth-password"),
    path("monitoring/status/", views.MonitoringStatusView.as_view(), name="monitoring-status"),
    path("monitoring/sweep/", views.MonitoringSweepView.as_view(), name="monitoring-sweep"),
    *router.urls,
]
