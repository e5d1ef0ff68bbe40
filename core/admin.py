"""Admin pieces every app's staff screens share."""

from django.http import HttpRequest


class ReadOnlyAdminMixin:
    """Staff look; the rows are written by the services only. Mix into a ModelAdmin or an
    inline, before it: `class XAdmin(ReadOnlyAdminMixin, admin.ModelAdmin)`."""

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False
