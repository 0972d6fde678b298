import pytest
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from personalization.exceptions import InvalidEmail
from personalization.validation import email_normalize

# Addresses near the edges of the quick check for plain addresses: each must be accepted or
# refused exactly as Django's validate_email decides.
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

    assert accepted == _django_accepts(address.strip().lower())
