"""The shop's pages. Thin: parse the request, call the cart, a service or the integration."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from personalization.capture.forms import ConsentForm, wording_version_unsign
from personalization.capture.wording import consent_wordings_current
from personalization.conf import app_settings
from personalization.models import ConsentSource, ConsentState, Purpose

from . import integration, outbox
from . import recommendations as shelves
from .cart import SessionCart
from .context_processors import BANNER_SESSION_KEY
from .forms import AddToCartForm, CheckoutForm, PurposeForm, QuantityForm, SignupForm
from .images import product_svg
from .models import CATEGORY_SEPARATOR, Order, Product
from .services import CheckoutError, Customer, order_for_cart, order_place

PLACED_ORDERS_SESSION_KEY = "shop_placed_orders"


# --- Catalogue ---------------------------------------------------------------------------------


def catalogue(request):
    products = Product.objects.active()
    category = request.GET.get("category", "").strip()
    if category:
        products = products.in_category(category)
    return render(
        request,
        "shop/catalogue.html",
        {
            "products": products,
            "category": category,
            "categories": _category_tree(),
            "add_form": AddToCartForm(),
        },
    )


def _category_tree() -> list[tuple[str, list[tuple[str, str]]]]:
    """[(top level, [(full path, label below the top)])] for the category filter."""
    tree: dict[str, set[str]] = {}
    for path in Product.objects.active().values_list("category", flat=True).distinct():
        levels = [level.strip() for level in path.split(">") if level.strip()]
        if not levels:
            continue
        tree.setdefault(levels[0], set())
        if len(levels) > 1:
            tree[levels[0]].add(CATEGORY_SEPARATOR.join(levels))
    return [
        (top, [(path, path[len(top) + len(CATEGORY_SEPARATOR) :]) for path in sorted(paths)])
        for top, paths in sorted(tree.items())
    ]


def product_detail(request, slug):
    product = get_object_or_404(Product.objects.active(), slug=slug)
    integration.product_viewed(request=request, product=product)
    levels = product.category_levels
    breadcrumbs = [
        (level, CATEGORY_SEPARATOR.join(levels[: index + 1])) for index, level in enumerate(levels)
    ]
    return render(
        request,
        "shop/product.html",
        {
            "product": product,
            "breadcrumbs": breadcrumbs,
            "add_form": AddToCartForm(),
            "shelf": shelves.product_shelf(request=request, product=product),
        },
    )


def product_image(request, slug):
    product = get_object_or_404(Product, slug=slug)
    svg = product_svg(title=product.title, category=product.category)
    response = HttpResponse(svg, content_type="image/svg+xml")
    response["Cache-Control"] = "public, max-age=3600"
    return response


# --- Cart --------------------------------------------------------------------------------------


def cart_detail(request):
    cart = SessionCart(request.session)
    lines = cart.lines()
    shelf = shelves.customer_shelf(
        request=request,
        personal_heading=gettext_lazy("You might also like"),
        # The shop's own cart: whatever the app may read, the page never suggests what is in it.
        leave_out={line.product.pk for line in lines},
    )
    return render(request, "shop/cart.html", {"cart": cart, "lines": lines, "shelf": shelf})


@require_POST
def cart_add(request, slug):
    product = get_object_or_404(Product.objects.active(), slug=slug)
    form = AddToCartForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Please choose a quantity between 1 and 99."))
        return redirect(product)
    cart = SessionCart(request.session)
    wanted = cart.quantity_of(product) + form.cleaned_data["quantity"]
    got = cart.add(product, form.cleaned_data["quantity"])
    if got == 0:
        messages.error(request, _("Sorry, %(title)s is sold out.") % {"title": product.title})
        return redirect(product)
    if got < wanted:
        messages.warning(
            request,
            _("Only %(count)d of %(title)s in stock; your cart has all of them.")
            % {"count": got, "title": product.title},
        )
    else:
        messages.success(request, _("%(title)s is in your cart.") % {"title": product.title})
    integration.cart_changed(request=request, cart=cart)
    return _redirect_back(request, "shop:cart")


@require_POST
def cart_update(request, slug):
    product = get_object_or_404(Product, slug=slug)
    form = QuantityForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Please enter a quantity between 0 and 99."))
        return redirect("shop:cart")
    cart = SessionCart(request.session)
    wanted = form.cleaned_data["quantity"]
    got = cart.set(product, wanted)
    if got < wanted:
        messages.warning(
            request,
            _("Only %(count)d of %(title)s in stock.") % {"count": got, "title": product.title},
        )
    integration.cart_changed(request=request, cart=cart)
    return redirect("shop:cart")


@require_POST
def cart_remove(request, slug):
    product = get_object_or_404(Product, slug=slug)
    cart = SessionCart(request.session)
    if cart.quantity_of(product):
        cart.remove(product)
        messages.info(request, _("%(title)s was removed.") % {"title": product.title})
        integration.cart_changed(request=request, cart=cart)
    return redirect("shop:cart")


def _redirect_back(request, fallback: str):
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return redirect(target)
    return redirect(fallback)


# --- Checkout ----------------------------------------------------------------------------------


def checkout(request):
    cart = SessionCart(request.session)
    if request.method == "POST":
        form = CheckoutForm(request.POST)
        consent = ConsentForm(request.POST)
        submitted_cart = request.POST.get("cart_id", "")
        placed = order_for_cart(submitted_cart)
        if placed is not None and _may_see(request, placed):
            # A double submit or a reload after the order went through: show the order again.
            return redirect(placed)
        if form.is_valid() & consent.is_valid():  # both, so that both show their errors
            if form.cleaned_data["cart_id"].hex != cart.id:
                messages.warning(request, _("Your cart changed meanwhile; please check it."))
                return redirect("shop:cart")
            try:
                order, _created = order_place(
                    request=request,
                    cart=cart,
                    customer=Customer(
                        email=form.cleaned_data["email"],
                        first_name=form.cleaned_data["first_name"],
                        last_name=form.cleaned_data["last_name"],
                    ),
                    consent=consent,
                )
            except CheckoutError as err:
                form.add_error(None, str(err))
            else:
                request.session.setdefault(PLACED_ORDERS_SESSION_KEY, []).append(order.reference)
                if consent.checked():
                    request.session[BANNER_SESSION_KEY] = True
                cart.start_new()
                return redirect(order)
    else:
        if not cart:
            messages.info(request, _("Your cart is empty."))
            return redirect("shop:cart")
        user = request.user
        consent = ConsentForm()
        form = CheckoutForm(
            initial={
                "cart_id": cart.id,
                "email": user.email if user.is_authenticated else "",
                "first_name": user.first_name if user.is_authenticated else "",
                "last_name": user.last_name if user.is_authenticated else "",
            }
        )
    return render(
        request,
        "shop/checkout.html",
        {
            "form": form,
            "consent": consent,
            "cart": cart,
            "lines": cart.lines(),
        },
    )


def _may_see(request, order: Order) -> bool:
    if order.reference in request.session.get(PLACED_ORDERS_SESSION_KEY, []):
        return True
    return request.user.is_authenticated and order.user_id == request.user.pk


def order_confirmation(request, reference):
    order = get_object_or_404(Order.objects.prefetch_related("lines"), reference=reference)
    if not _may_see(request, order):
        raise Http404
    return render(request, "shop/order_confirmation.html", {"order": order})


# --- Accounts ----------------------------------------------------------------------------------


def signup(request):
    if request.user.is_authenticated:
        return redirect("shop:account")
    if request.method == "POST":
        form = SignupForm(request.POST)
        consent = ConsentForm(request.POST)
        if form.is_valid() & consent.is_valid():  # both, so that both show their errors
            user = form.save()
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            integration.customer_signed_up(request=request, user=user)
            records = integration.consent_given(
                request=request, form=consent, source=ConsentSource.SIGNUP, user=user
            )
            messages.success(request, _("Welcome, your account is ready."))
            if any(record.double_opt_in for record in records):
                messages.info(request, CONFIRMATION_SENT_MESSAGE)
            return redirect("shop:account")
    else:
        form = SignupForm()
        consent = ConsentForm()
    return render(request, "registration/signup.html", {"form": form, "consent": consent})


class LogoutView(auth_views.LogoutView):
    """Log out and forget the anonymous id, so the next person at this computer starts afresh."""

    def post(self, request, *args, **kwargs):
        response = super().post(request, *args, **kwargs)
        response.delete_cookie(app_settings.ANONYMOUS_ID_COOKIE, samesite="Lax")
        return response


@login_required
def account(request):
    states = integration.visitor_consents(request) or {}
    wordings = consent_wordings_current(purposes=integration.CONSENT_PURPOSES)
    consents = [
        {
            "purpose": purpose,
            "wording": wordings[purpose].text,
            "state": states.get(purpose, ConsentState.NONE),
            "state_label": ConsentState(states.get(purpose, ConsentState.NONE)).label,
            "granted": states.get(purpose) == ConsentState.GRANTED,
            "pending": states.get(purpose) == ConsentState.PENDING,
        }
        for purpose in integration.CONSENT_PURPOSES
    ]
    orders = Order.objects.filter(user=request.user).prefetch_related("lines")
    return render(
        request,
        "shop/account.html",
        {
            "orders": orders,
            "consents": consents,
            "shelf": shelves.customer_shelf(request=request),
            "personalisation_on": states.get(Purpose.PERSONALIZATION) == ConsentState.GRANTED,
        },
    )


@login_required
@require_POST
def consent_update(request):
    form = PurposeForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("That choice is not one we offer."))
    else:
        change = integration.consent_change(
            request=request,
            purpose=form.cleaned_data["purpose"],
            granted=form.cleaned_data["granted"],
        )
        level, text = CONSENT_CHANGE_MESSAGES[change]
        messages.add_message(request, level, text)
    return redirect("shop:account")


CONFIRMATION_SENT_MESSAGE = gettext_lazy(
    "Almost done: check your inbox and open the link we just emailed you."
)
CONSENT_CHANGE_MESSAGES = {
    integration.ConsentChange.SAVED: (messages.SUCCESS, gettext_lazy("Your choice is saved.")),
    integration.ConsentChange.CONFIRMATION_SENT: (messages.SUCCESS, CONFIRMATION_SENT_MESSAGE),
    integration.ConsentChange.ALREADY_AWAITING: (
        messages.INFO,
        gettext_lazy(
            "We have already emailed you a confirmation link: please check your inbox "
            "(and your spam folder). It counts once you open it."
        ),
    ),
    integration.ConsentChange.FAILED: (
        messages.ERROR,
        gettext_lazy("Sorry, we could not save your choice."),
    ),
}


@require_POST
def personalisation_answer(request):
    """The banner asking anonymous visitors whether to tailor their visit."""
    if request.POST.get("answer") == "yes":
        version = wording_version_unsign(request.POST.get("wording"))
        if integration.personalisation_accept(request, version=version):
            messages.success(request, _("Thanks! We'll tailor your visit; change it any time."))
    request.session[BANNER_SESSION_KEY] = True
    return _redirect_back(request, "shop:catalogue")


# --- Outbox (the demo's local email sink) ------------------------------------------------------


def outbox_list(request):
    if not settings.DEMO_OUTBOX_ENABLED:
        raise Http404
    return render(
        request,
        "shop/outbox.html",
        {"outbox_messages": outbox.messages_list(), "outbox_dir": outbox.outbox_dir()},
    )


def outbox_detail(request, file_name, index):
    if not settings.DEMO_OUTBOX_ENABLED:
        raise Http404
    message = outbox.message_get(file_name, index)
    if message is None:
        raise Http404
    return render(request, "shop/outbox_detail.html", {"message": message})
