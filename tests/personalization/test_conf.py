import pytest
from django.core import checks
from django.test import override_settings

from personalization.adapter import DefaultAdapter, get_adapter
from personalization.conf import DEFAULTS, app_settings
from personalization.exceptions import ConfigurationError


def test_defaults_apply_when_the_setting_is_empty(settings):
    settings.PERSONALIZATION = {}
    assert app_settings.BATCH_SIZE == DEFAULTS["BATCH_SIZE"]
    assert app_settings.SENSITIVE_CATEGORIES == []
    assert isinstance(get_adapter(), DefaultAdapter)


def test_changing_the_setting_takes_effect_at_once():
    with override_settings(PERSONALIZATION={"BATCH_SIZE": 7}):
        assert app_settings.BATCH_SIZE == 7
    assert app_settings.BATCH_SIZE == DEFAULTS["BATCH_SIZE"]


def test_an_unknown_key_is_named_in_the_error():
    with override_settings(PERSONALIZATION={"SENSITIVE_CATEGORY": ["Health"]}):
        with pytest.raises(ConfigurationError, match="SENSITIVE_CATEGORY"):
            app_settings.BATCH_SIZE  # noqa: B018


def test_a_wrong_adapter_path_is_a_configuration_error_and_a_system_check_error():
    with override_settings(PERSONALIZATION={"ADAPTER": "shop.nowhere.Adapter"}):
        with pytest.raises(ConfigurationError, match="ADAPTER"):
            app_settings.ADAPTER  # noqa: B018
        ids = {message.id for message in checks.run_checks()}
        assert "personalization.E001" in ids


def test_system_checks_catch_unknown_double_opt_in_purposes_and_missing_middleware(settings):
    settings.PERSONALIZATION = {"DOUBLE_OPT_IN_PURPOSES": ["newsletter"]}
    settings.MIDDLEWARE = [
        m for m in settings.MIDDLEWARE if m != "personalization.middleware.AnonymousIdMiddleware"
    ]
    ids = {message.id for message in checks.run_checks()}
    assert {"personalization.E003", "personalization.W001"} <= ids


def test_the_demo_configuration_passes_the_system_checks():
    messages = [m for m in checks.run_checks() if m.id.startswith("personalization.")]
    assert messages == []


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("TRACK_WITHOUT_CONSENT", "no"),
        ("CONFIRMATION_LINK_MAX_AGE_DAYS", -1),
        ("CONFIRMATION_LINK_MAX_AGE_DAYS", "7"),
        ("SITE_URL", "shop.example.com"),
        ("SITE_URL", 42),
        ("SENSITIVE_CATEGORIES", "Health"),
        ("SENSITIVE_CATEGORIES", ["Health", 3]),
        ("DOUBLE_OPT_IN_PURPOSES", "marketing_email"),
        ("ANONYMOUS_ID_COOKIE", ""),
        ("ANONYMOUS_ID_COOKIE_AGE", True),
        ("ANONYMOUS_ID_COOKIE_AGE", 0),
        ("DEFAULT_CURRENCY", "EURO"),
        ("DEFAULT_CURRENCY", "XYZ"),
        ("BATCH_SIZE", 0),
        ("ADAPTER", 3),
    ],
)
def test_a_setting_of_the_wrong_type_is_a_system_check_error_naming_it(settings, key, value):
    settings.PERSONALIZATION = {key: value}
    errors = [m for m in checks.run_checks() if m.id == "personalization.E006"]
    assert [key in m.msg for m in errors] == [True]


def test_every_setting_has_a_type_rule():
    from personalization.checks import SETTING_RULES

    assert set(SETTING_RULES) == set(DEFAULTS)


def test_preference_links_that_stop_unsubscribing_before_editing_are_an_error(settings):
    settings.PERSONALIZATION = {
        **settings.PERSONALIZATION,
        "PREFERENCE_LINK_EDIT_DAYS": 60,
        "PREFERENCE_LINK_UNSUBSCRIBE_DAYS": 30,
    }
    assert [m.id for m in checks.run_checks() if m.id == "personalization.E008"] == [
        "personalization.E008"
    ]
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "PREFERENCE_LINK_UNSUBSCRIBE_DAYS": 60}
    assert not [m for m in checks.run_checks() if m.id == "personalization.E008"]
