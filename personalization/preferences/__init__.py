"""The customer in control: signed preference links, the preference history and the services
that read and change a customer's preferences.

- :mod:`.tokens`: signed links for emails (``preference_token``, ``preference_token_read``,
  ``preference_links_revoke``);
- :mod:`.services`: ``preferences_read``, ``preferences_update``, ``unsubscribe_all``;
- :mod:`.history`: reading the history of preference changes.

The preference-centre page, the account area and the API are thin entry points over these.
"""
