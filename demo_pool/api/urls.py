from django.urls import path

from . import views

urlpatterns = [
    path("demo/press-pass/activate/", views.ActivateView.as_view(), name="demo-activate"),
    path(
        "demo/requests/<uuid:request_id>/",
        views.ActivationRequestView.as_view(),
        name="demo-request",
    ),
    path(
        "demo/accounts/resend-credentials/",
        views.ResendView.as_view(),
        name="demo-resend-credentials",
    ),
    path(
        "demo/accounts/<str:user_id>/health/",
        views.AccountHealthView.as_view(),
        name="demo-account-health",
    ),
    path("demo/pool/status/", views.PoolStatusView.as_view(), name="demo-pool-status"),
    path("demo/pool/replenish/", views.ReplenishView.as_view(), name="demo-pool-replenish"),
]
