from django.urls import path
from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
router.register("bonuses", views.BonusViewSet, basename="bonus")
router.register("bonus-approvals", views.BonusApprovalViewSet, basename="bonus-approval")
router.register("triggers", views.TriggerViewSet, basename="trigger")
router.register("reports", views.ReportViewSet, basename="report")
router.register("audit", views.AuditEventViewSet, basename="audit")

urlpatterns = [
    *router.urls,
    path("mt5/metadata/", views.MT5MetadataView.as_view(), name="mt5-metadata"),
    path("mt5/accounts/<str:login>/", views.MT5AccountView.as_view(), name="mt5-account"),
]
