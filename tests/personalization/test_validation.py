import pytest
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from personalization.exceptions import InvalidEmail, InvalidInput
from personalization.validation import email_normalize, quantity

# Addresses near the edges of the quick check for plain addresses: each must be accepted or
# refused exactly as Django's validate_email decides, and refused if Profile.email can't hold it.
ADDRESSES = [
    "ann@example.com",
    "ann.smith+news@mail.example.co.uk",
    "a_b-c@x-y.example",
    "ann@localhost",
    "ann@[127.0.0.1]",
    '"ann smith"@example.com',
    "ann..smith@example.com",
    ".ann@example.com",
    "ann.@example.com",
    "ann@-example.com",
    "ann@example-.com",
    "ann@example.c",
    "ann@example.123",
    "ann@example.com.",
    "ann@exa_mple.com",
    "ann@@example.com",
    "ann@example..com",
    "ann@" + "a" * 63 + ".com",
    "ann@" + "a" * 64 + ".com",
    "a" * 310 + "@example.com",
    "a" * 242 + "@example.com",  # 254 characters: the most Profile.email holds
    "a" * 243 + "@example.com",  # 255: Django's check allows it, the field does not
    "ann@example.com\n",
    "anné@example.com",
    "ann@exämple.com",
    "ann@xn--exmple-cua.com",
    "o'brien@example.ie",
]


def _django_accepts(address: str) -> bool:
    try:
        validate_email(address)
    except ValidationError:
        return False
    return True


@pytest.mark.parametrize("address", ADDRESSES)
def test_email_check_agrees_with_django(address):
    try:
        email_normalize(address)
        accepted = True
    except InvalidEmail:
        accepted = False

    normal = address.strip().lower()
    assert accepted == (_django_accepts(normal) and len(normal) <= 254)


def test_an_address_too_long_to_store_says_so():
    with pytest.raises(InvalidEmail, match="at most 254 characters"):
        email_normalize("a" * 243 + "@example.com")


@pytest.mark.parametrize("value", ["²", "--5", "3000000000", "1.5", ""])
def test_odd_quantities_are_refused_with_a_reason(value):
    with pytest.raises(InvalidInput) as err:
        quantity(value, field="quantity")
    assert err.value.field == "quantity"
