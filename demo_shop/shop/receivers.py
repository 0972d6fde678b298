"""Tell the personalization app when shop products change and when customers log in; forget
a guest's name on the shop's own orders when the app erases the person.

Connected in ``ShopConfig.ready()``.
"""

from django.contrib.auth.signals import user_logged_in
from django.db.models.signals import post_save

from personalization.signals import profiles_removing

from . import integration
from .models import Product


def on_product_saved(sender, instance, raw=False, **kwargs):
    if raw:  # loaddata: the fixture's products arrive without their app mirror
        return
    integration.product_changed(instance)


def on_user_logged_in(sender, request, user, **kwargs):
    integration.customer_logged_in(request=request, user=user)


def on_profiles_removing(sender, profile_ids, into, **kwargs):
    if into is None:  # erased, not merged
        integration.guest_orders_forget(profile_ids=profile_ids)


def connect() -> None:
    profiles_removing.connect(on_profiles_removing, dispatch_uid="shop.profiles_removing")
    post_save.connect(on_product_saved, sender=Product, dispatch_uid="shop.product_saved")
    user_logged_in.connect(on_user_logged_in, dispatch_uid="shop.user_logged_in")
