"""Signals a shop sends to tell the app what happened, and signals the app sends back.

Send them from your own order, cart, product and account code::

    from personalization import signals

    signals.order_placed.send(
        sender=Order, order_id=str(order.pk), email=order.email, placed_at=order.created,
        total=order.total, currency="EUR",
        lines=[{"product_id": str(l.product_id), "quantity": l.qty, "unit_price": l.price}
               for l in order.lines.all()],
        request=request,
    )

``send()`` lets :class:`personalization.exceptions.InvalidInput` (a ``ValueError``) through
when the data is wrong, and writes nothing in that case; use ``send_robust()`` if a bad payload
must never interrupt your view. Every receiver runs in its own transaction savepoint.

**Identity arguments**, accepted by every signal about a customer (at least one is needed):
``email`` (str), ``user`` (the shop's user instance), ``anonymous_id`` (str, the visitor's
anonymous id) or ``request`` (the current request: its logged-in user and its anonymous-id
cookie are used, see ``ADAPTER``). ``order_placed``, ``customer_signed_up`` and
``customer_identified`` also take profile attributes: ``first_name``, ``last_name``,
``locale``, ``timezone``, ``country``, ``birthday`` (a date), and ``trusted`` (bool, default
False). Attributes change an existing customer's profile only when the identity names their
own account (``user``, or the request's signed-in user) or the sender passes ``trusted=True``
(the shop's own server code vouching for them, e.g. after verifying the address); a guest
checkout with a known customer's email adds the order to their profile and leaves their name,
birthday, … as they are. A profile identified for the first time takes them from anyone.

Datetimes must be timezone-aware. Money is a ``Decimal`` (or a string/int that parses as one).
"""

from django.dispatch import Signal

# --- Sent by the shop -------------------------------------------------------------------------

# An order was placed. Recorded once per order_id, however often it is sent.
#   order_id: str — the shop's order id
#   placed_at: aware datetime
#   total: Decimal — amount paid, >= 0
#   currency: str — ISO 4217 code such as "EUR" (PERSONALIZATION["DEFAULT_CURRENCY"] if omitted)
#   lines: list of {"product_id": str, "quantity": int > 0, "unit_price": Decimal >= 0}
#          (products must be known: send product_saved first)
#   cart_id: str, optional — the cart this order converts
#   consents: dict, optional — {purpose: wording_version} for each box the customer ticked
#   + identity arguments
order_placed = Signal()

# An order was cancelled, or refunded in full. It stops counting towards the customer's stats.
#   order_id: str; at: aware datetime, optional (default: now)
order_cancelled = Signal()
order_refunded = Signal()

# The contents of a cart changed. Send the whole cart each time (a snapshot, not a delta).
#   cart_id: str; updated_at: aware datetime — when the shop changed it; an update older than
#   the newest one already recorded is ignored
#   lines: list of {"product_id", "quantity", "unit_price"} — empty means the cart was emptied
#   currency: str, optional
#   + identity arguments
cart_updated = Signal()

# A customer looked at a product page. Stored only with personalisation consent.
#   product_id: str; occurred_at: aware datetime, optional (default: now)
#   + identity arguments
product_viewed = Signal()

# A customer created an account.
#   consents: dict, optional — {purpose: wording_version} for each box ticked at sign-up
#   + identity arguments (the user, and the request or anonymous_id to join their history)
customer_signed_up = Signal()

# A visitor became known: logged in, or gave their email. Their anonymous history joins their
# profile; two profiles found to be one person are merged.
#   + identity arguments
customer_identified = Signal()

# A product was created or changed in the shop.
#   product_id: str; title: str; and optionally sku, url, image_url, price, currency,
#   category (str "A > B" or a list of levels), in_stock, active, is_sensitive,
#   repurchase_interval_days, purchase_cycle ("durable", "repeat" or "unknown"),
#   updated_at (aware datetime: an older update is ignored)
product_saved = Signal()

# --- Sent by the app --------------------------------------------------------------------------

# Two profiles were found to be one person. ``source_id`` no longer exists.
#   sender: Profile; target: Profile; source_id: int
profiles_merged = Signal()

# Profiles are about to be deleted: merged into another one (``into`` is its id) or erased
# (``into`` is None). Sent inside the transaction that deletes them, before the delete, so a
# receiver can move or close what hangs on them (the app closes their segment stays).
#   sender: Profile; profile_ids: frozenset[int]; into: int | None
profiles_removing = Signal()

# A consent record was appended to the ledger. Sent inside the transaction that writes it (as
# post_save is), so a receiver's writes commit or roll back with the record.
#   sender: ConsentRecord; record: ConsentRecord
consent_recorded = Signal()

# Profiles changed: sent once per write (an order, a cart, an event, consent, preferences, a
# merge, an import batch), after its transaction commits, never for a rolled-back change.
#   sender: Profile
#   profile_ids: frozenset[int] — the profiles the write touched (all still exist at commit)
#   changes: dict[int, frozenset[str]] — per profile, what changed: "profile", "orders",
#            "cart", "events", "consent", "preferences", "merge" (personalization.changes.Change)
# Receivers run after the commit; an exception in one is logged, never raised to the shop.
profile_changed = Signal()

# Profiles entered or left a segment: sent after the change commits, in batches of at most
# SEGMENT_SIGNAL_BATCH profile ids (a full refresh that moves many profiles sends several).
#   sender: Segment (the class); segment: Segment
#   profile_ids: frozenset[int]
#   at: datetime — when they entered (left)
#   by: "refresh" (a full recomputation) or "realtime" (the profiles' own data changed)
segment_entered = Signal()
segment_exited = Signal()
