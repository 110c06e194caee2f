"""How a card is named to customers: the brand as Stripe spells it → the name people know."""

BRAND_NAMES = {
    "amex": "American Express",
    "diners": "Diners Club",
    "discover": "Discover",
    "jcb": "JCB",
    "mastercard": "Mastercard",
    "unionpay": "UnionPay",
    "visa": "Visa",
    "cartes_bancaires": "Cartes Bancaires",
}


def card_brand_name(brand: str) -> str:
    """The brand's common name; an unknown one title-cased, as Stripe may add brands."""
    return BRAND_NAMES.get(brand.lower(), brand.replace("_", " ").title())
