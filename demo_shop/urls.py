from django.contrib import admin
from django.urls import include, path

from demo_shop.shop.views import LogoutView

urlpatterns = [
    path("admin/", admin.site.urls),
    # Before Django's auth URLs: logging out also forgets the anonymous-id cookie.
    path("accounts/logout/", LogoutView.as_view(), name="logout"),
    path("accounts/", include("django.contrib.auth.urls")),
    # The language switcher in the header posts to Django's set_language view.
    path("i18n/", include("django.conf.urls.i18n")),
    path("personalization/", include("personalization.urls")),
    path("", include("demo_shop.shop.urls")),
]
