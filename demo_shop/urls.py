from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("personalization/", include("personalization.urls")),
    path("", include("demo_shop.shop.urls")),
]
