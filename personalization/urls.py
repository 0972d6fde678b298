from django.urls import path

from . import views

app_name = "personalization"

urlpatterns = [
    path("confirm/<str:token>/", views.consent_confirm_view, name="consent-confirm"),
]
