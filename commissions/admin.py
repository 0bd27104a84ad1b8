from django.contrib import admin

from commissions.models import Promoter


@admin.register(Promoter)
class PromoterAdmin(admin.ModelAdmin):
    list_display = ["code", "user", "upline", "status", "created_at"]
    list_filter = ["status"]
    search_fields = ["code", "user__username", "user__email"]
    raw_id_fields = ["user", "upline"]
