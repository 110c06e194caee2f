"""Email preferences: which customer emails may be turned off, and signed one-click unsubscribe links.

Receipts, payment problems, refunds, sign-in links and security notices always go out; only the
categories below honour a preference, and only their emails carry List-Unsubscribe (RFC 8058).
"""

from dataclasses import dataclass

from django.core import signing
from django.urls import reverse
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from portal.errors import UserFacingError
from portal.links import absolute_url

from .models import Customer

UNSUBSCRIBE_LINK_INVALID = _("This unsubscribe link does not work; it may have been cut short.")
UNSUBSCRIBE_SALT = "accounts.preferences.unsubscribe"


@dataclass(frozen=True)
class EmailCategory:
    key: str
    field: str  # the Customer BooleanField that turns the category on
    label: Promise
    description: Promise


BILLING_NOTICES = EmailCategory(
    key="billing_notices",
    field="notify_billing_notices",
    label=_("billing notices"),
    description=_("card updates and changes to your subscriptions (cancellations, pauses, resumptions)"),
)
RENEWAL_REMINDERS = EmailCategory(
    key="renewal_reminders",
    field="notify_renewal_reminders",
    label=_("renewal reminders for monthly plans"),
    description=_("reminders a few days before a monthly subscription renews"),
)
CARD_EXPIRY_REMINDERS = EmailCategory(
    key="card_expiry_reminders",
    field="notify_card_expiry_reminders",
    label=_("card expiry reminders"),
    description=_("reminders before the card that pays a subscription expires"),
)
EMAIL_CATEGORIES = {category.key: category for category in [BILLING_NOTICES, RENEWAL_REMINDERS, CARD_EXPIRY_REMINDERS]}


class UnsubscribeLinkInvalid(UserFacingError):
    """An unsubscribe token was altered or cut short; the message may be shown to whoever opened it."""

    def __init__(self):
        super().__init__(UNSUBSCRIBE_LINK_INVALID)


def customer_wants(customer: Customer, category: EmailCategory) -> bool:
    return bool(getattr(customer, category.field))


def unsubscribe_token_make(*, customer: Customer, category: EmailCategory) -> str:
    # No expiry: RFC 8058 asks that the link keeps working for as long as mail may be read.
    return signing.Signer(salt=UNSUBSCRIBE_SALT).sign_object({"c": customer.pk, "k": category.key})


def unsubscribe_token_check(token: str) -> tuple[Customer, EmailCategory]:
    """Return the customer and category the token names; raise UnsubscribeLinkInvalid."""
    try:
        data = signing.Signer(salt=UNSUBSCRIBE_SALT).unsign_object(token)
        category = EMAIL_CATEGORIES[data["k"]]
        customer = Customer.objects.get(pk=data["c"])
    except (signing.BadSignature, KeyError, TypeError, ValueError, Customer.DoesNotExist):
        raise UnsubscribeLinkInvalid() from None
    return customer, category


def unsubscribe_url(*, customer: Customer, category: EmailCategory) -> str:
    token = unsubscribe_token_make(customer=customer, category=category)
    return absolute_url(reverse("accounts:unsubscribe", kwargs={"token": token}))
