"""Indexes for the admin's profile search on PostgreSQL: the start of an email address or of
a first or last name (profiles_search() in identity.py). ``text_pattern_ops`` lets a prefix
``LIKE`` use them whatever the database's collation; they match the expressions Django writes
for ``startswith`` and ``istartswith``. SQLite has no operator classes, and a shop on SQLite
is small enough to scan."""

from django.db import migrations

INDEXES = {
    "pzn_profile_email_prefix": '(("email")::text) text_pattern_ops',
    "pzn_profile_first_name_prefix": '(UPPER(("first_name")::text)) text_pattern_ops',
    "pzn_profile_last_name_prefix": '(UPPER(("last_name")::text)) text_pattern_ops',
}


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, expression in INDEXES.items():
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON personalization_profile ({expression})"
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("personalization", "0010_membership_entered_index_id")]

    operations = [migrations.RunPython(create, drop)]
