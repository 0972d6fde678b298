"""The demo shop's fixed catalogue, created by ``manage.py seed_demo``.

Each entry: (slug, title, category, price, stock, repurchase interval in days or None,
description). Products in "Health" are flagged sensitive.
"""

from decimal import Decimal

SENSITIVE_TOP_CATEGORIES = {"Health"}

# A table, kept one product per two lines for reading.
# fmt: off
PRODUCTS = [
    # Food & Drink: consumables bought again and again.
    ("house-blend-coffee-beans", "House Blend Coffee Beans 500 g", "Food & Drink > Coffee",
     "12.90", 120, 21, "Medium roast with notes of cocoa and hazelnut. Whole beans."),
    ("espresso-roast", "Espresso Roast 1 kg", "Food & Drink > Coffee",
     "24.50", 60, 30, "Dark, syrupy and made for the portafilter."),
    ("decaf-colombia", "Decaf Colombia 250 g", "Food & Drink > Coffee",
     "8.90", 40, 28, "Swiss-water decaffeinated, all of the taste."),
    ("cold-brew-bags", "Cold Brew Coffee Bags (10)", "Food & Drink > Coffee",
     "9.50", 35, 14, "Drop one in a jug of water overnight."),
    ("earl-grey-loose-leaf", "Earl Grey Loose Leaf 200 g", "Food & Drink > Tea",
     "7.90", 80, 30, "Black tea with bergamot oil from Calabria."),
    ("green-sencha", "Green Sencha 100 g", "Food & Drink > Tea",
     "9.90", 50, 30, "Steamed Japanese green tea, grassy and fresh."),
    ("chamomile-tea", "Chamomile Tea (20 bags)", "Food & Drink > Tea",
     "4.50", 90, 21, "Whole chamomile flowers for the evening cup."),
    ("dark-chocolate-bar", "Dark Chocolate 70 %", "Food & Drink > Pantry",
     "3.20", 150, 7, "Single-origin cocoa from Peru."),
    ("olive-oil-extra-virgin", "Extra Virgin Olive Oil 750 ml", "Food & Drink > Pantry",
     "14.90", 45, 45, "Cold-pressed Koroneiki olives from Crete."),
    ("wildflower-honey", "Wildflower Honey 400 g", "Food & Drink > Pantry",
     "8.40", 30, 60, "Raw and unfiltered, from a beekeeper in Småland."),
    # Beauty: consumables too.
    ("gentle-shampoo", "Gentle Shampoo 300 ml", "Beauty > Hair",
     "6.90", 70, 45, "Sulphate-free, for every day."),
    ("repair-conditioner", "Repair Conditioner 300 ml", "Beauty > Hair",
     "7.90", 55, 45, "With oat protein for dry ends."),
    ("solid-shampoo-bar", "Solid Shampoo Bar", "Beauty > Hair",
     "9.00", 40, 60, "No plastic bottle; lasts as long as two."),
    ("daily-face-cream", "Daily Face Cream SPF 15", "Beauty > Skin",
     "18.50", 35, 60, "Light moisturiser with sun protection."),
    ("hand-cream", "Hand Cream 75 ml", "Beauty > Skin",
     "5.90", 60, 30, "Shea butter, non-greasy."),
    ("lip-balm", "Lip Balm", "Beauty > Skin",
     "3.50", 100, 30, "Beeswax and calendula."),
    # Home: durable goods, no repurchase interval.
    ("pour-over-kettle", "Pour-over Kettle", "Home > Kitchen",
     "49.00", 20, None, "Gooseneck spout for a slow, even pour."),
    ("burr-grinder", "Manual Burr Grinder", "Home > Kitchen",
     "69.00", 15, None, "Ceramic burrs, 40 grind settings."),
    ("ceramic-mug-set", "Ceramic Mug Set (4)", "Home > Kitchen",
     "32.00", 25, None, "Hand-glazed stoneware, dishwasher safe."),
    ("chefs-knife", "Chef's Knife 20 cm", "Home > Kitchen",
     "79.00", 12, None, "Forged stainless steel, full tang."),
    ("cast-iron-pan", "Cast Iron Pan 26 cm", "Home > Kitchen",
     "45.00", 18, None, "Pre-seasoned; lasts a lifetime."),
    ("teapot-glass", "Glass Teapot 1 l", "Home > Kitchen",
     "27.00", 22, None, "With a removable steel infuser."),
    ("linen-throw", "Linen Throw Blanket", "Home > Living",
     "59.00", 14, None, "Stonewashed linen in sage green."),
    ("scented-candle", "Scented Candle: Fig", "Home > Living",
     "16.00", 40, 40, "Soy wax, burns for 40 hours."),
    ("reading-lamp", "Reading Lamp", "Home > Living",
     "89.00", 8, None, "Warm dimmable light with a brass arm."),
    ("houseplant-pot", "Terracotta Plant Pot", "Home > Living",
     "12.00", 50, None, "With a saucer; 18 cm across."),
    # Outdoors and books: more durable goods.
    ("insulated-bottle", "Insulated Bottle 750 ml", "Outdoors > Hiking",
     "29.00", 40, None, "Keeps drinks cold for 24 hours, hot for 12."),
    ("trail-backpack", "Trail Backpack 28 l", "Outdoors > Hiking",
     "95.00", 10, None, "Light, with a rain cover."),
    ("camping-stove", "Camping Stove", "Outdoors > Camping",
     "54.00", 12, None, "Folds to the size of a fist."),
    ("camping-mug", "Enamel Camping Mug", "Outdoors > Camping",
     "11.00", 45, None, "Speckled enamel on steel."),
    ("coffee-atlas", "The Coffee Atlas", "Books > Food",
     "29.90", 20, None, "Where coffee grows, and how it tastes."),
    ("tea-book", "A Little Book of Tea", "Books > Food",
     "17.50", 25, None, "Brewing guides for forty teas."),
    ("nordic-baking", "Nordic Baking", "Books > Food",
     "34.00", 15, None, "Cardamom buns, rye bread and more."),
    # Health: sensitive. Never used for marketing or recommendations.
    ("vitamin-d3", "Vitamin D3 (90 capsules)", "Health > Vitamins",
     "9.90", 60, 90, "1000 IU per capsule."),
    ("multivitamin", "Daily Multivitamin (60 tablets)", "Health > Vitamins",
     "12.90", 50, 60, "A–Z vitamins and minerals."),
    ("prenatal-vitamins", "Prenatal Vitamins (60 tablets)", "Health > Pregnancy",
     "19.90", 30, 60, "With folic acid and iron."),
    ("pregnancy-test", "Pregnancy Test (2 pack)", "Health > Pregnancy",
     "11.50", 40, None, "Results in three minutes."),
    ("first-aid-kit", "First Aid Kit", "Health > First aid",
     "24.00", 25, None, "Plasters, bandages, scissors and a guide."),
    ("allergy-relief", "Allergy Relief Tablets (30)", "Health > Medicine",
     "7.50", 35, 30, "Non-drowsy antihistamine."),
    ("digital-thermometer", "Digital Thermometer", "Health > Medicine",
     "13.90", 30, None, "Reads in ten seconds."),
]
# fmt: on


def product_rows() -> list[dict]:
    """The catalogue as keyword arguments for the shop's Product model."""
    rows = []
    for slug, title, category, price, stock, interval, description in PRODUCTS:
        rows.append(
            {
                "slug": slug,
                "title": title,
                "category": category,
                "price": Decimal(price),
                "stock": stock,
                "repurchase_interval_days": interval,
                "description": description,
                "is_sensitive": category.split(">")[0].strip() in SENSITIVE_TOP_CATEGORIES,
            }
        )
    return rows
