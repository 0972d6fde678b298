"""Privacy: what the app keeps about a person, for how long, and how it leaves the app.

The capabilities live in modules of their own: ``export`` (everything held about one
person, as JSON-ready data), ``retention`` (raw events expire), ``csv_safety`` (CSV cells
a spreadsheet cannot run as formulas), ``erasure`` (a person forgotten at their request) and
``suppression`` (the hashed addresses that must not be re-subscribed). What we know about a
customer, as the preference centre shows it, is ``personalization.preferences.known``.
"""
