"""Consent-first personalisation for Django shops."""

__version__ = "0.1.0"
