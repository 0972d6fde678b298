from django.urls import path

from . import views

app_name = "shop"
urlpatterns = [
    path("", views.catalogue, name="catalogue"),
    path("products/<slug:slug>/", views.product_detail, name="product"),
    path("products/<slug:slug>/image.svg", views.product_image, name="product_image"),
    path("cart/", views.cart_detail, name="cart"),
    path("cart/add/<slug:slug>/", views.cart_add, name="cart_add"),
    path("cart/update/<slug:slug>/", views.cart_update, name="cart_update"),
    path("cart/remove/<slug:slug>/", views.cart_remove, name="cart_remove"),
    path("checkout/", views.checkout, name="checkout"),
    path("orders/<str:reference>/", views.order_confirmation, name="order_confirmation"),
    path("signup/", views.signup, name="signup"),
    path("account/", views.account, name="account"),
    path("account/consent/", views.consent_update, name="consent_update"),
    path("personalisation/", views.personalisation_answer, name="personalisation_answer"),
    path("outbox/", views.outbox_list, name="outbox"),
    path("outbox/<str:file_name>/<int:index>/", views.outbox_detail, name="outbox_message"),
]
