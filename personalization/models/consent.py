"""The consent ledger: append-only records of what each customer agreed to, and when."""

from __future__ import annotations

from django.db import models
from django.db.models.functions import Least
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ..exceptions import ImmutableRecord
from .profiles import Profile


class Purpose(models.TextChoices):
    EMAIL_MARKETING = "email_marketing", _("Email marketing")
    PERSONALIZATION = "personalization", _("Personalisation (using my activity to tailor content)")
    AD_AUDIENCES = "ad_audiences", _("Advertising audiences")


class ConsentStatus(models.TextChoices):
    GRANTED = "granted", _("granted")
    WITHDRAWN = "withdrawn", _("withdrawn")


class ConsentSource(models.TextChoices):
    CHECKOUT = "checkout", _("checkout")
    SIGNUP = "signup", _("account sign-up")
    PREFERENCE_CENTRE = "preference_centre", _("preference centre")
    ACCOUNT = "account", _("the customer's account page")
    UNSUBSCRIBE_LINK = "unsubscribe_link", _("unsubscribe link in an email")
    BANNER = "banner", _("website consent banner")
    API = "api", _("API")
    IMPORT = "import", _("import")
    ADMIN = "admin", _("admin")
    EMAIL_SERVICE = "email_service", _("the email service (unsubscribed or complained there)")


class ConsentState(models.TextChoices):
    """Current consent for a purpose, derived from the ledger (never stored)."""

    GRANTED = "granted", _("granted")
    PENDING = "pending", _("awaiting confirmation")
    WITHDRAWN = "withdrawn", _("withdrawn")
    NONE = "none", _("never asked")


class ConsentRecordQuerySet(models.QuerySet):
    """The ledger is evidence: bulk updates and deletes are refused like ``save()`` on a row.

    The two deliberate exceptions: erasure deletes the profile (its records go with it through
    the cascade, which does not use this queryset), and a merge re-points records to the
    surviving profile with :meth:`merge_into`.
    """

    def update(self, **kwargs):
        raise ImmutableRecord("Consent records are append-only; record a new one instead.")

    def delete(self):
        raise ImmutableRecord(
            "Consent records are deleted only by erasing their profile, never one by one."
        )

    def merge_into(self, *, profile) -> int:
        """Re-point these records to ``profile``, the survivor of a merge; nothing else changes."""
        return super().update(profile=profile)

    def for_purpose(self, purpose: str):
        return self.filter(purpose=purpose)

    def latest_first(self):
        return self.order_by("-ordered_at", "-pk")


class ConsentRecord(models.Model):
    """One grant or withdrawal. Never updated in place; deleted only by erasure.

    Current consent is the latest record per profile and purpose in ledger order
    (``ordered_at``, then pk; see ``personalization.consent``). A grant written with
    ``double_opt_in`` counts only once a record with ``confirmed_at`` confirms it.
    """

    profile = models.ForeignKey(
        Profile,
        verbose_name=_("profile"),
        on_delete=models.CASCADE,
        related_name="consent_records",
    )
    purpose = models.CharField(_("purpose"), max_length=32, choices=Purpose.choices)
    status = models.CharField(_("status"), max_length=16, choices=ConsentStatus.choices)
    source = models.CharField(_("source"), max_length=32, choices=ConsentSource.choices)
    wording_version = models.CharField(
        _("wording version"),
        max_length=64,
        blank=True,
        help_text=_("Identifies the exact text the customer was shown, e.g. checkout-2026-03."),
    )
    recorded_at = models.DateTimeField(
        _("recorded at"),
        default=timezone.now,
        db_index=True,
        help_text=_("When the customer gave or withdrew consent, as the caller reported it."),
    )
    written_at = models.DateTimeField(
        _("written at"),
        default=timezone.now,
        editable=False,
        help_text=_("When the server wrote this record."),
    )
    ordered_at = models.GeneratedField(
        expression=Least("recorded_at", "written_at"),
        output_field=models.DateTimeField(),
        db_persist=True,
        verbose_name=_("ledger time"),
        help_text=_(
            "The earlier of the reported and the written time: the ledger is read in this "
            "order, so a record dated ahead never outranks one written after it."
        ),
    )
    double_opt_in = models.BooleanField(
        _("needs confirmation"),
        default=False,
        help_text=_(
            "Whether this grant counts only once confirmed (double opt-in), decided when it "
            "was written."
        ),
    )
    confirmed_at = models.DateTimeField(
        _("confirmed at"),
        null=True,
        blank=True,
        help_text=_("When the customer confirmed a double opt-in grant."),
    )
    confirms = models.OneToOneField(
        "self",
        verbose_name=_("confirms"),
        null=True,
        blank=True,
        editable=False,
        on_delete=models.CASCADE,  # only ever by erasure, with the whole profile
        related_name="confirmation",
        help_text=_("For a confirmation: the grant it confirms (each grant at most once)."),
    )
    email = models.EmailField(
        _("email at the time"),
        blank=True,
        help_text=_("The address the consent was given for, kept as evidence."),
    )
    ip_address = models.GenericIPAddressField(_("IP address"), null=True, blank=True)

    objects = ConsentRecordQuerySet.as_manager()

    class Meta:
        verbose_name = _("consent record")
        verbose_name_plural = _("consent ledger")
        # Also for Django's internal updates (bulk_update, related managers): no way around.
        base_manager_name = "objects"
        ordering = ["-ordered_at", "-pk"]
        indexes = [
            models.Index(
                fields=["profile", "purpose", "-ordered_at", "-id"], name="pzn_consent_ordered"
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(confirmed_at__isnull=True)
                | models.Q(status=ConsentStatus.GRANTED),
                name="pzn_consent_confirm_only_grants",
            ),
            models.CheckConstraint(
                condition=models.Q(double_opt_in=False) | models.Q(status=ConsentStatus.GRANTED),
                name="pzn_consent_double_opt_in_only_grants",
            ),
        ]

    def __str__(self) -> str:
        when = f"{self.recorded_at:%Y-%m-%d}"
        return f"{self.get_purpose_display()}: {self.get_status_display()} ({when})"

    def save(self, *args, **kwargs):
        # The ledger is evidence: a record, once written, is never changed.
        if not self._state.adding:
            raise ImmutableRecord("Consent records are append-only; record a new one instead.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ImmutableRecord(
            "Consent records are deleted only by erasing their profile, never one by one."
        )


class ConsentWordingQuerySet(models.QuerySet):
    """Published wordings are evidence of what customers were shown: never changed or deleted.

    A version, once published, may be on a form a customer has open; were it deleted and its
    number given again to another text, that form's consent would be recorded against words
    the customer never saw. Publish a new version instead.
    """

    def update(self, **kwargs):
        raise ImmutableRecord("Consent wordings are append-only; publish a new version instead.")

    def delete(self):
        raise ImmutableRecord("Consent wordings are never deleted; publish a new version instead.")

    def published(self, *, now=None):
        """Published by ``now`` (default: now): the ones that may be shown."""
        return self.filter(published_at__lte=now or timezone.now())

    def latest_first(self):
        return self.order_by("-number", "-pk")


class ConsentWording(models.Model):
    """One published text a customer is shown next to a consent box, in one language.

    Append-only: a text is never edited; changing the words publishes a new version
    (``personalization.capture.wording.consent_wording_publish``). ``version`` is what the
    consent ledger stores (``ConsentRecord.wording_version``), so the exact words a customer
    agreed to can always be shown (GDPR Art. 7(1)).
    """

    purpose = models.CharField(_("purpose"), max_length=32, choices=Purpose.choices)
    language = models.CharField(
        _("language"),
        max_length=15,
        help_text=_("A language code from the LANGUAGES setting, e.g. en, sv or tr."),
    )
    number = models.PositiveIntegerField(
        _("number"),
        help_text=_("Counts the versions of this purpose in this language: 1, 2, 3, …"),
    )
    version = models.CharField(
        _("version"),
        max_length=64,
        unique=True,
        help_text=_(
            "Purpose, language and number, e.g. email_marketing.sv.2: stored with each consent "
            "record as its wording version, never given to another text."
        ),
    )
    text = models.TextField(
        _("text"), help_text=_("The exact words shown next to the consent box, as plain text.")
    )
    published_at = models.DateTimeField(
        _("published at"),
        default=timezone.now,
        help_text=_("When it was published; from then on it is shown, until a later version is."),
    )

    objects = ConsentWordingQuerySet.as_manager()

    class Meta:
        verbose_name = _("consent wording")
        verbose_name_plural = _("consent wordings")
        base_manager_name = "objects"
        ordering = ["purpose", "language", "-number"]
        constraints = [
            models.UniqueConstraint(
                fields=["purpose", "language", "number"], name="pzn_wording_number_unique"
            ),
            models.CheckConstraint(condition=~models.Q(text=""), name="pzn_wording_text_not_empty"),
            models.CheckConstraint(
                condition=models.Q(number__gte=1), name="pzn_wording_number_gte_1"
            ),
        ]

    def __str__(self) -> str:
        return self.version

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ImmutableRecord(
                "Consent wordings are append-only; publish a new version instead."
            )
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ImmutableRecord("Consent wordings are never deleted; publish a new version instead.")
