"""Word lists the catalogue generator draws from: categories, product types, attributes,
options and price ranges. Changing anything here changes the generated catalogue, so the
shipped data (``envs/webshop/data``) must be rebuilt with
``python -m turngym.envs.webshop.build_data``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CategorySpec:
    """How to generate products of one category."""

    name: str
    types: dict[str, tuple[float, float]]
    """Product type -> (min price, max price) in dollars."""
    materials: tuple[str, ...]
    """One of these is always an attribute (the product is made of / is it)."""
    attributes: tuple[str, ...]
    """Feature-like attributes; each product gets 2-4."""
    options: dict[str, tuple[str, ...]]
    """Option dimension -> values; each product offers a subset of each dimension."""
    audiences: tuple[str, ...]
    brands: tuple[str, ...]


CATEGORIES: tuple[CategorySpec, ...] = (
    CategorySpec(
        name="clothing",
        types={"t-shirt": (8, 35), "hoodie": (20, 70), "jeans": (25, 90), "dress": (20, 110),
               "sweater": (22, 95), "shorts": (10, 45)},
        materials=("cotton", "polyester", "linen", "wool", "denim", "fleece"),
        attributes=("machine washable", "quick dry", "moisture wicking", "slim fit",
                    "relaxed fit", "long sleeve", "short sleeve", "wrinkle free", "stretchy",
                    "hand wash"),
        options={"size": ("small", "medium", "large", "x-large", "xx-large"),
                 "color": ("black", "white", "red", "blue", "navy", "grey", "green", "pink")},
        audiences=("men", "women", "teens", "everyday wear"),
        brands=("Northpeak", "Urbanloom", "Cottonway", "Kestrel", "Mavi Lane", "Brightfold"),
    ),
    CategorySpec(
        name="footwear",
        types={"sneakers": (30, 120), "boots": (45, 180), "sandals": (15, 60),
               "slippers": (10, 40), "loafers": (35, 110)},
        materials=("leather", "suede", "canvas", "mesh", "faux fur", "knit"),
        attributes=("non slip", "waterproof", "memory foam", "lightweight", "arch support",
                    "slip on", "breathable", "wide toe box", "cushioned"),
        options={"size": ("size 6", "size 7", "size 8", "size 9", "size 10", "size 11",
                          "size 12"),
                 "color": ("black", "brown", "white", "tan", "grey", "olive", "burgundy")},
        audiences=("men", "women", "walking", "running", "indoor use"),
        brands=("Stridewell", "Oakstep", "Pacer & Co", "Trailmark", "Softsole"),
    ),
    CategorySpec(
        name="home",
        types={"pillow": (12, 60), "blanket": (18, 90), "curtains": (15, 75),
               "area rug": (30, 200), "towel set": (15, 70), "bed sheets": (20, 110)},
        materials=("cotton", "microfiber", "velvet", "bamboo", "linen", "sherpa"),
        attributes=("machine washable", "hypoallergenic", "blackout", "ultra soft",
                    "fade resistant", "easy care", "quick dry", "non shedding", "cooling"),
        options={"size": ("twin", "full", "queen", "king", "california king"),
                 "color": ("white", "ivory", "grey", "sage", "navy", "blush", "charcoal")},
        audiences=("bedroom", "living room", "guest room", "kids room"),
        brands=("Hearthly", "Dwellspring", "Linenhouse", "Cozynest", "Moss & Mill"),
    ),
    CategorySpec(
        name="beauty",
        types={"shampoo": (6, 30), "body lotion": (5, 28), "face serum": (10, 60),
               "lip balm": (3, 15), "sunscreen": (7, 35), "hand cream": (4, 22)},
        materials=("aloe vera", "shea butter", "argan oil", "vitamin c", "hyaluronic acid",
                   "tea tree"),
        attributes=("paraben free", "cruelty free", "fragrance free", "organic", "vegan",
                    "sulfate free", "long lasting", "sensitive skin", "dry skin",
                    "dermatologist tested"),
        options={"size": ("1 fl oz", "2 fl oz", "4 fl oz", "8 fl oz", "16 fl oz"),
                 "scent": ("lavender", "vanilla", "unscented", "coconut", "citrus", "rose")},
        audiences=("daily use", "women", "men", "all skin types"),
        brands=("Glowbotanics", "Purelea", "Dermacalm", "Verdance", "Silkroot"),
    ),
    CategorySpec(
        name="electronics",
        types={"headphones": (15, 150), "phone case": (8, 40), "charging cable": (6, 25),
               "bluetooth speaker": (20, 130), "power bank": (15, 70), "keyboard": (20, 120)},
        materials=("aluminum", "silicone", "nylon braided", "abs plastic", "tempered glass",
                   "carbon fiber"),
        attributes=("wireless", "fast charging", "noise cancelling", "waterproof",
                    "shockproof", "usb c", "long battery life", "portable", "ergonomic",
                    "backlit"),
        options={"color": ("black", "white", "blue", "red", "silver", "rose gold"),
                 "style": ("standard", "pro", "mini", "max", "2 pack")},
        audiences=("travel", "office", "gaming", "iphone", "android"),
        brands=("Voltique", "Sonara", "Ampwise", "Circuitry", "Nimbus Tech", "Pixelon"),
    ),
    CategorySpec(
        name="grocery",
        types={"coffee": (8, 35), "green tea": (5, 25), "protein bar": (10, 40),
               "trail mix": (6, 28), "hot sauce": (4, 18), "olive oil": (9, 40)},
        materials=("whole bean", "ground", "loose leaf", "almond", "peanut", "dark chocolate"),
        attributes=("gluten free", "organic", "non gmo", "keto friendly", "sugar free",
                    "low calorie", "kosher", "high protein", "fair trade", "plant based"),
        options={"flavor": ("original", "honey", "mint", "chili lime", "caramel", "berry"),
                 "pack": ("pack of 1", "pack of 2", "pack of 4", "pack of 6", "pack of 12")},
        audiences=("snacking", "breakfast", "the office", "gifts"),
        brands=("Harvest Lane", "Goldmeadow", "Kettle & Crumb", "Sunbrew", "Wildpantry"),
    ),
)

#: Review sentence templates, picked by star rating (1..5).
REVIEW_TEXTS: dict[int, tuple[str, ...]] = {
    1: ("Broke after a week, would not buy again.", "Nothing like the pictures."),
    2: ("Below my expectations for the price.", "Quality is hit and miss."),
    3: ("It is fine, does the job.", "Average quality, arrived on time."),
    4: ("Very good, only minor complaints.", "Good value and works as described."),
    5: ("Excellent, exactly what I wanted!", "Love it, bought a second one."),
}

#: Instruction templates; ``{what}`` is the attribute/type/option phrase.
INSTRUCTION_TEMPLATES: tuple[str, ...] = (
    "i need {what}, and price lower than {price} dollars",
    "i am looking for {what} with a price under {price} dollars",
    "find me {what}, priced lower than {price} dollars",
    "i want to buy {what}, and it should cost less than {price} dollars",
)

#: How an option value is phrased in an instruction, per option dimension.
OPTION_PHRASES: dict[str, str] = {
    "size": "in {v}", "color": "in {v} color", "scent": "with {v} scent",
    "flavor": "in {v} flavor", "pack": "in a {v}", "style": "in the {v} style",
}
