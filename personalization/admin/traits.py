"""A profile's traits in its admin page: what the shop recorded can be edited (as ``shop``
traits, through ``traits_set``), what was inferred shows how sure it is, and the keys the
customer removed are listed and stay removed."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _

from ..changes import Change, profile_changed_note
from ..exceptions import InvalidInput
from ..models import Trait, TraitRemoval, TraitSource
from ..traits import confidence_text, traits_set
from ..traits.services import key_clean, value_clean
from .base import ReadOnlyTabularInline


def value_parse(text: str) -> Any:
    """What a marketer typed as a trait value: ``38`` a number, ``true`` yes, ``"38"`` (in
    quotes) the text 38, anything else the text as typed."""
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if isinstance(value, str | int | float | bool) else text


def value_show(value: Any) -> str:
    """A trait value as a marketer types it (the inverse of :func:`value_parse`)."""
    if isinstance(value, str) and value_parse(value) == value and not _is_json(value):
        return value
    return json.dumps(value, ensure_ascii=False)


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


class TraitForm(forms.ModelForm):
    value = forms.CharField(
        label=_("value"),
        max_length=300,
        help_text=_('Text, a number, or true/false. "38" in quotes is the text 38.'),
    )

    class Meta:
        model = Trait
        fields = ("key", "value")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Cleaning writes the typed value to the instance: remember the stored one.
        self.stored = (self.instance.key, self.instance.value) if self.instance.pk else None
        if self.stored is not None:
            self.initial["value"] = value_show(self.instance.value)

    def clean_key(self) -> str:
        try:
            return key_clean(self.cleaned_data["key"])
        except InvalidInput as err:
            raise forms.ValidationError(err.message) from err

    def clean_value(self) -> Any:
        try:
            return value_clean(value_parse(self.cleaned_data["value"]))
        except InvalidInput as err:
            raise forms.ValidationError(err.message) from err

    def has_changed(self) -> bool:
        # A value shown as typed is not a change (the text field and the JSON differ in form).
        if self.stored is not None and set(self.changed_data) <= {"value"}:
            typed = value_parse(self.data.get(self.add_prefix("value"), ""))
            return type(typed) is not type(self.stored[1]) or typed != self.stored[1]
        return super().has_changed()


class TraitInline(admin.TabularInline):
    """The profile's traits. Saved here they are the shop's (source ``shop``): they replace an
    inferred value, and a key the customer removed is not recorded again."""

    model = Trait
    form = TraitForm
    extra = 0
    fields = ("key", "value", "source", "how_sure", "updated_at")
    readonly_fields = ("source", "how_sure", "updated_at")
    ordering = ("key",)
    verbose_name_plural = _("traits (what else we know, and how)")

    @admin.display(description=_("how sure"))
    def how_sure(self, trait: Trait) -> str:
        if trait.source != TraitSource.INFERRED:
            return "–"
        return confidence_text(trait.confidence)


class TraitRemovalInline(ReadOnlyTabularInline):
    """Keys the customer removed: not recorded again unless they give them."""

    model = TraitRemoval
    fields = ("key", "by", "removed_at")
    readonly_fields = fields
    ordering = ("key",)
    verbose_name_plural = _("traits the customer removed (not recorded again)")


def traits_formset_save(request, profile, formset) -> None:
    """Save the trait inline through the domain: edits as ``shop`` traits, deletions deleted.

    Sets the formset's ``new_objects``, ``changed_objects`` and ``deleted_objects`` as
    ``formset.save()`` would, for the admin's change message."""
    values, renamed, existing = {}, [], set()
    for form in formset.forms:
        if not form.has_changed() or form in formset.deleted_forms:
            continue
        key = form.cleaned_data["key"]
        values[key] = form.cleaned_data["value"]
        if form.stored is not None:
            if form.stored[0] != key:
                renamed.append(form.instance.pk)
            else:
                existing.add(key)
    deleted = [form.instance for form in formset.deleted_forms if form.instance.pk is not None]
    gone = [trait.pk for trait in deleted] + renamed
    if gone:
        Trait.objects.filter(pk__in=gone, profile=profile).delete()
        profile_changed_note(profile.pk, Change.TRAITS)
    written = traits_set(profile=profile, values=values, source="shop") if values else []
    formset.new_objects = [trait for trait in written if trait.key not in existing]
    formset.changed_objects = [(trait, ["value"]) for trait in written if trait.key in existing]
    formset.deleted_objects = deleted
    kept_out = sorted(
        set(
            TraitRemoval.objects.filter(profile=profile, key__in=list(values)).values_list(
                "key", flat=True
            )
        )
        - {trait.key for trait in written}
    )
    if kept_out:
        messages.warning(
            request,
            _("Not recorded, as the customer removed them: %(keys)s.")
            % {"keys": ", ".join(kept_out)},
        )
