"""Orders and carts keep what the customer paid and gain its value in the shop's currency.

Orders and carts recorded before this migration are taken to be in the shop's currency
(their shop_total is their total): until now the app had no way to convert. A shop that
recorded orders in other currencies corrects their shop_total and then runs
profile_stats_rebuild() (see docs/guide/integrate.md, "Money: one shop currency").
"""

from django.db import migrations, models


def shop_total_from_total(apps, schema_editor):
    for name in ("Order", "Cart"):
        model = apps.get_model("personalization", name)
        model.objects.update(shop_total=models.F("total"))


class Migration(migrations.Migration):
    dependencies = [
        ("personalization", "0006_event_is_sensitive"),
    ]

    operations = [
        migrations.AddField(
            model_name="order",
            name="shop_total",
            field=models.DecimalField(decimal_places=2, max_digits=12, null=True),
        ),
        migrations.AddField(
            model_name="cart",
            name="shop_total",
            field=models.DecimalField(
                decimal_places=2,
                default=0,
                help_text=(
                    "The cart's value in the shop's currency (PERSONALIZATION['CURRENCY']), "
                    "converted when it last changed."
                ),
                max_digits=12,
                verbose_name="total in shop currency",
            ),
        ),
        migrations.RunPython(shop_total_from_total, migrations.RunPython.noop, elidable=True),
        migrations.AlterField(
            model_name="order",
            name="shop_total",
            field=models.DecimalField(
                decimal_places=2,
                help_text=(
                    "The total in the shop's currency (PERSONALIZATION['CURRENCY']), converted "
                    "at the time of the order. Statistics and money rules count this one."
                ),
                max_digits=12,
                verbose_name="total in shop currency",
            ),
        ),
        migrations.AddConstraint(
            model_name="order",
            constraint=models.CheckConstraint(
                condition=models.Q(shop_total__gte=0), name="pzn_order_shop_total_gte_0"
            ),
        ),
        migrations.AlterField(
            model_name="order",
            name="total",
            field=models.DecimalField(
                decimal_places=2,
                help_text="What the customer paid, in the currency they paid in.",
                max_digits=12,
                verbose_name="total paid",
            ),
        ),
        migrations.AlterField(
            model_name="order",
            name="currency",
            field=models.CharField(
                help_text="ISO 4217 code of the total paid.",
                max_length=3,
                verbose_name="currency paid",
            ),
        ),
        migrations.AlterField(
            model_name="cart",
            name="currency",
            field=models.CharField(
                blank=True,
                help_text="ISO 4217 code of the total.",
                max_length=3,
                verbose_name="currency",
            ),
        ),
        migrations.AlterField(
            model_name="cart",
            name="total",
            field=models.DecimalField(
                decimal_places=2,
                default=0,
                help_text="The cart's value in its own currency.",
                max_digits=12,
                verbose_name="total",
            ),
        ),
    ]
