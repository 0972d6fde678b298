"""The customer in control: signed preference links, the preference history and the services
that read and change a customer's preferences.

- :mod:`.tokens`: signed links for emails (``preference_token``, ``preference_token_read``,
  ``preference_links_revoke``);
- :mod:`.services`: ``preferences_read``, ``preferences_update``, ``unsubscribe_all``;
- :mod:`.history`: reading the history of preference changes;
- :mod:`.known`: "what we know and why you hear from us": ``what_we_know`` and the services
  that remove what the customer may remove (``recently_viewed_forget``,
  ``profile_fields_forget``; traits: ``personalization.traits.trait_remove``).

The preference-centre page, the account area and the API are thin entry points over these.
"""
