"""The fixed material the generator draws from: markets, names, categories, topics, wordings.

Everything here is data, kept in tuples so that the order (and therefore the output for a
given seed) never depends on dict or set iteration.
"""

from __future__ import annotations

from typing import NamedTuple


class Market(NamedTuple):
    country: str
    locale: str
    timezone: str
    utc_offset_hours: int  # standard time; good enough to place orders in the local daytime
    weight: float
    first_names: tuple[str, ...]
    last_names: tuple[str, ...]


MARKETS: tuple[Market, ...] = (
    Market(
        "SE",
        "sv-SE",
        "Europe/Stockholm",
        1,
        0.30,
        (
            "Anna",
            "Åsa",
            "Elin",
            "Maja",
            "Sofia",
            "Karin",
            "Erik",
            "Lars",
            "Johan",
            "Oskar",
            "Nils",
            "Björn",
            "Ingrid",
            "Linnéa",
            "Gustav",
            "Henrik",
        ),
        (
            "Andersson",
            "Johansson",
            "Karlsson",
            "Nilsson",
            "Eriksson",
            "Lindqvist",
            "Berg",
            "Lindström",
            "Holm",
            "Sjöberg",
            "Åberg",
            "Wikström",
        ),
    ),
    Market(
        "TR",
        "tr-TR",
        "Europe/Istanbul",
        3,
        0.15,
        (
            "Ayşe",
            "Elif",
            "Zeynep",
            "Şeyma",
            "Fatma",
            "Merve",
            "Mehmet",
            "Mustafa",
            "Emre",
            "Burak",
            "Can",
            "Ömer",
            "Gökhan",
            "Deniz",
        ),
        (
            "Yılmaz",
            "Kaya",
            "Demir",
            "Şahin",
            "Çelik",
            "Yıldız",
            "Öztürk",
            "Aydın",
            "Arslan",
            "Doğan",
            "Koç",
            "Kurt",
        ),
    ),
    Market(
        "DE",
        "de-DE",
        "Europe/Berlin",
        1,
        0.15,
        (
            "Lena",
            "Hannah",
            "Julia",
            "Laura",
            "Lukas",
            "Jonas",
            "Felix",
            "Maximilian",
            "Paul",
            "Jürgen",
            "Sabine",
            "Katrin",
        ),
        (
            "Müller",
            "Schmidt",
            "Schneider",
            "Fischer",
            "Weber",
            "Meyer",
            "Wagner",
            "Becker",
            "Schulz",
            "Hoffmann",
            "Koch",
            "Weiß",
        ),
    ),
    Market(
        "GB",
        "en-GB",
        "Europe/London",
        0,
        0.15,
        (
            "Olivia",
            "Amelia",
            "Isla",
            "Emily",
            "Grace",
            "Oliver",
            "Harry",
            "George",
            "Jack",
            "Charlie",
            "Thomas",
            "Sophie",
        ),
        (
            "Smith",
            "Jones",
            "Taylor",
            "Brown",
            "Williams",
            "Wilson",
            "Davies",
            "Evans",
            "Thomas",
            "Roberts",
            "Walker",
            "Wright",
        ),
    ),
    Market(
        "US",
        "en-US",
        "America/New_York",
        -5,
        0.08,
        ("Emma", "Ava", "Mia", "Madison", "Liam", "Noah", "Ethan", "Mason", "Logan", "Chloe"),
        (
            "Johnson",
            "Miller",
            "Davis",
            "Garcia",
            "Martinez",
            "Anderson",
            "Moore",
            "Jackson",
            "Harris",
            "Clark",
        ),
    ),
    Market(
        "US",
        "en-US",
        "America/Los_Angeles",
        -8,
        0.04,
        ("Abigail", "Harper", "Evelyn", "Aiden", "Jacob", "Daniel", "Lucas", "Zoe"),
        ("Lopez", "Gonzalez", "Nguyen", "Lee", "Kim", "Wong", "Rivera", "Young"),
    ),
    Market(
        "NL",
        "nl-NL",
        "Europe/Amsterdam",
        1,
        0.05,
        ("Sanne", "Femke", "Lotte", "Daan", "Bram", "Sem", "Ruben", "Anouk"),
        ("de Jong", "Jansen", "de Vries", "van den Berg", "Bakker", "Visser", "Smit", "Mulder"),
    ),
    Market(
        "FI",
        "fi-FI",
        "Europe/Helsinki",
        2,
        0.04,
        ("Aino", "Eevi", "Helmi", "Juho", "Mikko", "Väinö", "Onni", "Sanna"),
        (
            "Korhonen",
            "Virtanen",
            "Mäkinen",
            "Nieminen",
            "Mäkelä",
            "Hämäläinen",
            "Laine",
            "Heikkinen",
        ),
    ),
    # Visitors whose language, timezone and country the shop never learnt.
    Market("", "", "", 0, 0.04, ("Alex", "Sam", "Robin", "Kim"), ("Lee", "Park", "Novak")),
)

EMAIL_DOMAIN_TLDS: tuple[str, ...] = ("com", "net", "org")

# Reserved documentation ranges (RFC 5737): never a real customer's address.
IP_PREFIXES: tuple[str, ...] = ("192.0.2.", "198.51.100.", "203.0.113.")


class CategoryTemplate(NamedTuple):
    path: str
    weight: float
    price_range: tuple[float, float]
    repurchase_days: tuple[int, ...]  # empty: durable goods; else the interval choices
    is_sensitive: bool
    nouns: tuple[str, ...]
    adjectives: tuple[str, ...]


CATEGORIES: tuple[CategoryTemplate, ...] = (
    CategoryTemplate(
        "Coffee & Tea > Coffee",
        0.10,
        (6.5, 24.0),
        (21, 30, 30, 45),
        False,
        ("Coffee Beans 500 g", "Ground Coffee 250 g", "Espresso Pods 30 pcs", "Cold Brew Blend"),
        ("Ethiopia Yirgacheffe", "Colombia Huila", "House", "Dark Roast", "Decaf", "Kenya AA"),
    ),
    CategoryTemplate(
        "Coffee & Tea > Tea",
        0.07,
        (4.5, 16.0),
        (30, 45, 60),
        False,
        ("Loose Leaf Tea 100 g", "Tea Bags 40 pcs", "Matcha 30 g", "Herbal Infusion"),
        ("Earl Grey", "Sencha", "Rooibos", "Chai", "Chamomile", "Darjeeling"),
    ),
    CategoryTemplate(
        "Beauty > Hair care",
        0.08,
        (5.0, 22.0),
        (45, 60, 60, 90),
        False,
        ("Shampoo 250 ml", "Conditioner 250 ml", "Hair Oil 50 ml", "Dry Shampoo"),
        ("Repairing", "Volume", "Gentle", "Argan", "Anti-dandruff", "Colour Care"),
    ),
    CategoryTemplate(
        "Beauty > Skin care",
        0.07,
        (8.0, 45.0),
        (45, 60, 90),
        False,
        ("Face Cream 50 ml", "Cleanser 150 ml", "Serum 30 ml", "Sun Cream SPF 50"),
        ("Hydrating", "Calming", "Vitamin C", "Night", "Fragrance-free", "Daily"),
    ),
    CategoryTemplate(
        "Home > Kitchen",
        0.14,
        (7.0, 120.0),
        (),
        False,
        (
            "Mug",
            "Chef's Knife",
            "Cutting Board",
            "Frying Pan",
            "Teapot",
            "Coffee Grinder",
            "French Press",
            "Salad Bowl",
        ),
        ("Stoneware", "Oak", "Cast Iron", "Enamel", "Ceramic", "Steel", "Glass"),
    ),
    CategoryTemplate(
        "Home > Textiles",
        0.08,
        (12.0, 90.0),
        (),
        False,
        ("Linen Tea Towel", "Throw Blanket", "Cushion Cover", "Bath Towel", "Tablecloth"),
        ("Wool", "Waffle", "Organic Cotton", "Striped", "Washed Linen"),
    ),
    CategoryTemplate(
        "Home > Cleaning",
        0.05,
        (3.5, 15.0),
        (30, 60),
        False,
        ("Dish Soap 500 ml", "All-purpose Cleaner", "Laundry Detergent 1 l", "Sponges 3 pcs"),
        ("Eco", "Citrus", "Unscented", "Lavender"),
    ),
    CategoryTemplate(
        "Clothing > Women",
        0.10,
        (15.0, 140.0),
        (),
        False,
        ("Sweater", "T-shirt", "Dress", "Jeans", "Rain Jacket", "Scarf"),
        ("Merino", "Organic", "Relaxed", "Classic", "Striped", "Recycled"),
    ),
    CategoryTemplate(
        "Clothing > Men",
        0.08,
        (15.0, 140.0),
        (),
        False,
        ("Shirt", "Chinos", "Hoodie", "T-shirt", "Wool Socks 2-pack", "Parka"),
        ("Oxford", "Slim", "Heavyweight", "Organic", "Classic"),
    ),
    CategoryTemplate(
        "Outdoor > Garden",
        0.05,
        (6.0, 80.0),
        (),
        False,
        ("Watering Can", "Pruning Shears", "Herb Seeds Kit", "Planter", "Garden Gloves"),
        ("Galvanised", "Terracotta", "Ergonomic", "Heirloom"),
    ),
    CategoryTemplate(
        "Books & Games",
        0.04,
        (9.0, 45.0),
        (),
        False,
        ("Cookbook", "Board Game", "Puzzle 1000 pcs", "Notebook", "Travel Guide"),
        ("Nordic", "Family", "Pocket", "Illustrated", "Classic"),
    ),
    # The one sensitive category: flagged on every product, so it is never used to infer,
    # segment or recommend (the app's rule), yet it appears in orders and browsing like any other.
    CategoryTemplate(
        "Health > Vitamins & supplements",
        0.03,
        (6.0, 30.0),
        (30, 60, 90),
        True,
        ("Vitamin D 90 caps", "Multivitamin", "Omega-3", "Iron Supplement", "Magnesium"),
        ("Daily", "Vegan", "Extra Strength", "Family"),
    ),
    CategoryTemplate(
        "Health > Pregnancy & baby",
        0.01,
        (8.0, 40.0),
        (),
        True,
        ("Pregnancy Test 2 pcs", "Prenatal Vitamins", "Nursing Pads", "Baby Thermometer"),
        ("Gentle", "Sensitive", "Digital", "Organic"),
    ),
)

# Categories of goods bought once in a while: the generated products are ``durable``, so a
# purchase rests the category in recommendations (no second frying pan next week). Categories
# with repurchase intervals are ``repeat``; the rest (clothing, books) ``unknown``.
DURABLE_CATEGORIES: frozenset[str] = frozenset(
    {"Home > Kitchen", "Home > Textiles", "Outdoor > Garden"}
)

# Marketer-defined topics customers can choose in the preference centre.
TOPICS: tuple[tuple[str, str, str, bool], ...] = (
    ("new-arrivals", "New arrivals", "The newest products, once a week.", True),
    ("offers", "Offers and sales", "Discounts and seasonal sales.", True),
    ("coffee-and-tea", "Coffee & tea", "Roasts, teas and brewing tips.", True),
    ("beauty", "Beauty", "Hair and skin care news.", False),
    ("home-and-garden", "Home & garden", "Ideas for the kitchen, home and garden.", False),
)

# Product-view sources recorded as an event property.
VIEW_SOURCES: tuple[str, ...] = ("search", "category", "recommendation", "email", "direct")
