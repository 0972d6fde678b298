"""Privacy requests: erasure and the suppression list (``erasure``, ``suppression``)."""
