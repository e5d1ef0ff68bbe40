from django.urls import path
from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
router.register("broker-accounts", views.BrokerAccountViewSet, basename="broker-account")
router.register("sessions", views.SessionViewSet, basename="trading-session")
router.register("trades", views.TradeViewSet, basename="trade")
router.register("signals", views.SignalViewSet, basename="signal")

urlpatterns = [
    path(
        "trades/signals/",
        views.SignalSubscriptionsView.as_view(),
        name="signal-subscriptions",
    ),
    path(
        "trades/signals/subscribe/",
        views.SignalSubscribeView.as_view(),
        name="signal-subscribe",
    ),
    path(
        "trades/signals/unsubscribe/",
        views.SignalUnsubscribeView.as_view(),
        name="signal-unsubscribe",
    ),
    *router.urls,
]
