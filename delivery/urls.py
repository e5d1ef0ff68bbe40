"""`/d/<token>`, outside `/api/` (config/urls.py includes it under "d/")."""

from django.urls import path

from . import views

app_name = "delivery"

urlpatterns = [
    path("<str:token>", views.reveal_page, name="reveal"),
    # A trailing slash added by a mail client still reaches the page (and stays out of the
    # 404 log, which would show the token).
    path("<str:token>/", views.reveal_page),
]
