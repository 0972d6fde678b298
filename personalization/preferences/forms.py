"""The preference centre's form: what the customer sees, turned into ``preferences_update``'s
arguments. It holds no rules of its own; the service checks everything again."""

from __future__ import annotations

import datetime as dt
from typing import Any, Final

from django import forms
from django.utils import formats
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from ..models import Channel, Frequency, Greeting
from .services import MAX_PAUSE, UNSET, PreferenceState

# The channels the preference centre offers: the ones the app sends through. SMS and push
# join this list when the app can send them (Channel already names them).
OFFERED_CHANNELS: Final = (Channel.EMAIL,)

# The pause lengths offered, in days (all within MAX_PAUSE).
PAUSE_DAYS: Final = (14, 30, 90)
KEEP, RESUME = "", "resume"


def _pause_label(days: int) -> str:
    if days % 7 == 0 and days < 30:
        weeks = days // 7
        return ngettext("For %(count)d week", "For %(count)d weeks", weeks) % {"count": weeks}
    months = days // 30
    return ngettext("For %(count)d month", "For %(count)d months", months) % {"count": months}


class PreferencesForm(forms.Form):
    """Built from the customer's :class:`PreferenceState`; ``changes()`` gives what to save."""

    topics = forms.MultipleChoiceField(
        label=_("Topics"), required=False, widget=forms.CheckboxSelectMultiple
    )
    channels = forms.MultipleChoiceField(
        label=_("How we reach you"), required=False, widget=forms.CheckboxSelectMultiple
    )
    frequency = forms.ChoiceField(
        label=_("How often"), choices=Frequency.choices, widget=forms.RadioSelect
    )
    pause = forms.ChoiceField(label=_("Take a break"), required=False, widget=forms.RadioSelect)
    greeting = forms.ChoiceField(
        label=_("Greeting"), choices=Greeting.choices, widget=forms.RadioSelect
    )
    personalization = forms.BooleanField(required=False)

    def __init__(
        self,
        *args: Any,
        state: PreferenceState,
        personalization_label: str | None,
        now: dt.datetime,
        **kwargs: Any,
    ) -> None:
        self.state = state
        self.now = now
        if args and hasattr(args[0], "getlist"):
            # A topic retired while the page was open is left out, not an error: the
            # customer's other choices are saved.
            data, known = args[0].copy(), {topic.slug for topic in state.topics}
            data.setlist("topics", [slug for slug in data.getlist("topics") if slug in known])
            args = (data, *args[1:])
        kwargs.setdefault(
            "initial",
            {
                "topics": [topic.slug for topic in state.topics if topic.subscribed],
                "channels": [c.channel for c in state.channels if c.enabled],
                "frequency": state.frequency,
                "pause": KEEP,
                "greeting": state.greeting,
                "personalization": state.personalization_on,
            },
        )
        super().__init__(*args, **kwargs)
        self.fields["topics"].choices = [(topic.slug, topic.name) for topic in state.topics]
        self.fields["channels"].choices = [
            (c.channel, c.label) for c in state.channels if c.channel in OFFERED_CHANNELS
        ]
        self.fields["pause"].choices = self._pause_choices()
        if personalization_label is None:
            # No wording to ask with (none published): the switch is not offered.
            del self.fields["personalization"]
        else:
            self.fields["personalization"].label = personalization_label

    def _pause_choices(self) -> list[tuple[str, str]]:
        paused = self.state.paused_until
        if paused is None:
            first = [(KEEP, _("No break"))]
        else:
            until = formats.date_format(paused, "DATE_FORMAT")
            first = [
                (KEEP, _("Keep my break until %(date)s") % {"date": until}),
                (RESUME, _("End my break now")),
            ]
        return first + [(str(days), _pause_label(days)) for days in PAUSE_DAYS]

    def topic_rows(self) -> list[dict[str, Any]]:
        """The topics with their descriptions, for a template that shows both."""
        chosen = set(self["topics"].value() or [])
        return [
            {
                "slug": topic.slug,
                "name": topic.name,
                "description": topic.description,
                "checked": topic.slug in chosen,
                "id": f"id_topics_{index}",
            }
            for index, topic in enumerate(self.state.topics)
        ]

    def changes(self) -> dict[str, Any]:
        """``preferences_update`` keyword arguments for what the customer submitted."""
        data = self.cleaned_data
        topics = set(data["topics"])
        channels = set(data["channels"])
        pause = data["pause"]
        if pause == KEEP:
            paused_until: Any = UNSET
        elif pause == RESUME:
            paused_until = None
        else:
            paused_until = self.now + min(dt.timedelta(days=int(pause)), MAX_PAUSE)
        return {
            "topics": {topic.slug: topic.slug in topics for topic in self.state.topics},
            "channels": {channel: channel in channels for channel in OFFERED_CHANNELS},
            "frequency": data["frequency"],
            "paused_until": paused_until,
            "greeting": data["greeting"],
            "personalization": data.get("personalization"),
        }
