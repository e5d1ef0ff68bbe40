from django.contrib import admin

from gateways.models import SimulatorKnobs


@admin.register(SimulatorKnobs)
class SimulatorKnobsAdmin(admin.ModelAdmin):
    list_display = (
        "server",
        "latency_ms",
        "error_rate",
        "fault_retcode",
        "forbidden_rate",
        "drop_rate",
        "updated_at",
    )
    list_editable = ("latency_ms", "error_rate", "fault_retcode", "forbidden_rate", "drop_rate")
