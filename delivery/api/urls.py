from django.urls import path
from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
router.register("delivery", views.DeliveryViewSet, basename="delivery")

urlpatterns = [
    path("delivery/reveal/", views.DeliveryRevealView.as_view(), name="delivery-reveal"),
    *router.urls,
]
