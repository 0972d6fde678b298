from django.urls import path

from . import views
from .preferences import views as preferences

app_name = "personalization"

urlpatterns = [
    path("confirm/<str:token>/", views.consent_confirm_view, name="consent-confirm"),
    # The signed link in every email; <path:> so that any malformed token still reaches the
    # view and gets the one neutral answer, not a different 404.
    path("preferences/<path:token>", preferences.preference_centre_by_link, name="preferences"),
    path("unsubscribe/<path:token>", preferences.unsubscribe_link, name="unsubscribe"),
    # ...and a link cut short before its token.
    path("preferences/", preferences.preference_centre_by_link, {"token": ""}),
    path("unsubscribe/", preferences.unsubscribe_link, {"token": ""}),
    # The logged-in customer's own page, linked from the shop's account area.
    path("account/preferences/", preferences.preference_centre, name="account-preferences"),
]
