"""`{% staff_dashboard %}`: the dashboard tiles of the signed-in staff user (admin index)."""

from django import template

from operations.dashboard import dashboard_tiles

register = template.Library()


@register.inclusion_tag("operations/dashboard.html", takes_context=True)
def staff_dashboard(context):
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not (user.is_active and user.is_staff):
        return {"tiles": []}
    tiles = dashboard_tiles(user=user)
    return {"tiles": tiles}
