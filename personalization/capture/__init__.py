"""Consent capture: versioned consent wordings and the capture of consent at sign-up and checkout.

- :mod:`.wording`: the published texts a customer is shown next to a consent box, one version
  per text and language, and the selectors that pick the current one.
- :mod:`.services`: :func:`~.services.consent_capture`, which records the boxes a customer
  ticked in the consent ledger with the version they were shown.
- :mod:`.forms`: :class:`~.forms.ConsentForm`, the form a shop adds to its sign-up and checkout.
"""
