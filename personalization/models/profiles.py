"""Customer profiles, the identifiers that resolve to them, and their preferences."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import ExtractDay, ExtractMonth, Lower
from django.utils.translation import gettext_lazy as _


class Frequency(models.TextChoices):
    """How much marketing mail the customer wants at most (stricter than the shop's pace).

    Ordered from the least to the most strict. ``default`` sends as things happen, at the
    shop's own pace. (``few_per_week`` was folded into ``weekly`` by migration 0013.)
    """

    DEFAULT = "default", _("As it happens")
    WEEKLY = "weekly", _("At most one email a week")
    MONTHLY = "monthly", _("At most one email a month")


class Greeting(models.TextChoices):
    """Whether emails greet the customer by first name."""

    DEFAULT = "default", _("The shop's default for my language")
    FIRST_NAME = "first_name", _("Greet me by my first name")
    NEUTRAL = "neutral", _("Use a neutral greeting")


class ProfileQuerySet(models.QuerySet):
    def identified(self):
        """Profiles with an email address (anonymous visitors have none)."""
        return self.exclude(email="")

    def anonymous(self):
        return self.filter(email="", user__isnull=True)

    def customers(self):
        """Profiles with at least one order that counts (not cancelled or refunded)."""
        return self.filter(orders_count__gt=0)


class Profile(models.Model):
    """One customer (or one anonymous visitor, until they identify)."""

    email = models.EmailField(
        _("email"),
        blank=True,
        default="",
        help_text=_("Normalised (trimmed, lower case). Empty for anonymous visitors."),
    )
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        verbose_name=_("shop user"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="personalization_profile",
        help_text=_("The shop's user account, when the customer has one."),
    )
    first_name = models.CharField(_("first name"), max_length=150, blank=True)
    last_name = models.CharField(_("last name"), max_length=150, blank=True)
    locale = models.CharField(
        _("locale"), max_length=35, blank=True, help_text=_("Language tag such as en or sv-SE.")
    )
    timezone = models.CharField(
        _("timezone"),
        max_length=63,
        blank=True,
        help_text=_("IANA timezone name such as Europe/Stockholm; used to send at a decent hour."),
    )
    country = models.CharField(
        _("country"), max_length=2, blank=True, help_text=_("ISO 3166-1 alpha-2 code.")
    )
    birthday = models.DateField(_("birthday"), null=True, blank=True)
    # Traits (what else is recorded about the customer, with its source and confidence) are
    # rows of their own: Trait, profile.traits.

    # Denormalised order statistics, kept current on every order and rebuildable set-based
    # (personalization.stats.profile_stats_rebuild). Cancelled and refunded orders don't count.
    orders_count = models.PositiveIntegerField(_("orders"), default=0)
    total_spent = models.DecimalField(_("total spent"), max_digits=14, decimal_places=2, default=0)
    average_order_value = models.DecimalField(
        _("average order value"), max_digits=14, decimal_places=2, default=0
    )
    first_order_at = models.DateTimeField(_("first order"), null=True, blank=True)
    last_order_at = models.DateTimeField(_("last order"), null=True, blank=True)

    # Preferences the customer sets in the preference centre.
    frequency = models.CharField(
        _("frequency"),
        max_length=20,
        choices=Frequency.choices,
        default=Frequency.DEFAULT,
        help_text=_("The most marketing mail the customer wants; stricter than the shop's cap."),
    )
    paused_until = models.DateTimeField(
        _("paused until"),
        null=True,
        blank=True,
        help_text=_("No marketing mail before this time."),
    )
    greeting = models.CharField(
        _("greeting"), max_length=20, choices=Greeting.choices, default=Greeting.DEFAULT
    )
    link_version = models.PositiveIntegerField(
        _("link version"),
        default=1,
        editable=False,
        help_text=_(
            "Preference links in emails carry this number; raising it makes every link sent "
            "so far unusable (personalization.preferences.tokens.preference_links_revoke)."
        ),
    )

    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    objects = ProfileQuerySet.as_manager()

    class Meta:
        verbose_name = _("profile")
        verbose_name_plural = _("profiles")
        constraints = [
            # Stored normalised, so a plain unique index is case-insensitive uniqueness.
            models.UniqueConstraint(
                fields=["email"], condition=~Q(email=""), name="pzn_profile_email_unique"
            ),
            models.CheckConstraint(
                condition=Q(email=Lower("email")), name="pzn_profile_email_lowercase"
            ),
            models.CheckConstraint(
                condition=Q(frequency__in=Frequency.values), name="pzn_profile_frequency"
            ),
        ]
        indexes = [
            models.Index(fields=["last_order_at"], name="pzn_profile_last_order"),
            models.Index(fields=["first_order_at"], name="pzn_profile_first_order"),
            # Segments select by them, and the admin lists the values present from them
            # (PresentValuesFilter).
            models.Index(fields=["country"], name="pzn_profile_country"),
            models.Index(fields=["locale"], name="pzn_profile_locale"),
            # The birthday flow looks up today's and tomorrow's birthdays every minute.
            models.Index(
                ExtractMonth("birthday"),
                ExtractDay("birthday"),
                name="pzn_profile_birthday",
                condition=Q(birthday__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return self.email or str(_("anonymous visitor #%(id)s") % {"id": self.pk})

    @property
    def is_anonymous(self) -> bool:
        return not self.email and self.user_id is None


class ProfileAlias(models.Model):
    """Another identifier that resolves to a profile: an anonymous id or a former email."""

    class Kind(models.TextChoices):
        ANONYMOUS_ID = "anonymous_id", _("anonymous id")
        EMAIL = "email", _("email")

    profile = models.ForeignKey(
        Profile, verbose_name=_("profile"), on_delete=models.CASCADE, related_name="aliases"
    )
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    value = models.CharField(_("value"), max_length=254)
    created_at = models.DateTimeField(_("first seen"), auto_now_add=True)

    class Meta:
        verbose_name = _("profile alias")
        verbose_name_plural = _("profile aliases")
        constraints = [
            models.UniqueConstraint(fields=["kind", "value"], name="pzn_alias_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.value}"


class Topic(models.Model):
    """A subject customers can choose to hear about, defined by the marketer."""

    slug = models.SlugField(_("slug"), max_length=64, unique=True)
    name = models.CharField(_("name"), max_length=100)
    description = models.TextField(
        _("description"), blank=True, help_text=_("Shown to customers in the preference centre.")
    )
    is_active = models.BooleanField(
        _("active"), default=True, help_text=_("Inactive topics are hidden from customers.")
    )
    subscribed_by_default = models.BooleanField(
        _("subscribed by default"),
        default=True,
        help_text=_("Whether a customer who never chose hears about this topic."),
    )
    position = models.PositiveSmallIntegerField(_("position"), default=0)

    class Meta:
        verbose_name = _("topic")
        verbose_name_plural = _("topics")
        ordering = ["position", "name"]

    def __str__(self) -> str:
        return self.name


class TopicPreference(models.Model):
    """A customer's explicit choice for one topic."""

    profile = models.ForeignKey(
        Profile, verbose_name=_("profile"), on_delete=models.CASCADE, related_name="topic_choices"
    )
    topic = models.ForeignKey(
        Topic, verbose_name=_("topic"), on_delete=models.CASCADE, related_name="choices"
    )
    subscribed = models.BooleanField(_("subscribed"))
    updated_at = models.DateTimeField(_("chosen at"))

    class Meta:
        verbose_name = _("topic choice")
        verbose_name_plural = _("topic choices")
        constraints = [
            models.UniqueConstraint(fields=["profile", "topic"], name="pzn_topic_choice_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.topic}: {'✓' if self.subscribed else '✗'}"


class Channel(models.TextChoices):
    EMAIL = "email", _("Email")
    SMS = "sms", _("Text message")
    PUSH = "push", _("Push notification")


class ChannelPreference(models.Model):
    """A customer's explicit choice for one channel; no row means the channel is allowed."""

    profile = models.ForeignKey(
        Profile,
        verbose_name=_("profile"),
        on_delete=models.CASCADE,
        related_name="channel_choices",
    )
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    enabled = models.BooleanField(_("enabled"))
    updated_at = models.DateTimeField(_("chosen at"))

    class Meta:
        verbose_name = _("channel choice")
        verbose_name_plural = _("channel choices")
        constraints = [
            models.UniqueConstraint(
                fields=["profile", "channel"], name="pzn_channel_choice_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_channel_display()}: {'✓' if self.enabled else '✗'}"
