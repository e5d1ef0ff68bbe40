from django.contrib import admin
from django.urls import path

admin.site.site_header = "Brokerdesk"
admin.site.site_title = "Brokerdesk"
admin.site.index_title = "Back office"

urlpatterns = [
    path("admin/", admin.site.urls),
]
