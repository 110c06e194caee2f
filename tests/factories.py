"""Factories for every model the tests build: one place, reused by every test module."""

import time

import factory
from allauth.account.models import EmailAddress
from allauth.mfa.totp.internal.auth import TOTP, format_hotp_value, hotp_value

from accounts.models import Customer, User

DEFAULT_PASSWORD = "correct-horse-battery-staple"
# The authenticator app secret of every staff user the factories make (tests compute codes from it).
STAFF_TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def totp_code(secret: str = STAFF_TOTP_SECRET, *, seconds_needed: int = 0) -> str:
    """The authenticator code for now. allauth accepts only the current 30-second window's code, so a
    code typed into a browser near a window's end reaches the server in the next one and is refused:
    with `seconds_needed`, wait for a fresh window when fewer seconds than that are left."""
    left = 30 - time.time() % 30
    if left < seconds_needed:
        time.sleep(left + 0.05)
    return format_hotp_value(hotp_value(secret, int(time.time()) // 30))


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"customer{n}@example.com")
    password = factory.django.Password(DEFAULT_PASSWORD)

    @factory.post_generation
    def verified_email(self, create, extracted, **kwargs):
        if create:
            EmailAddress.objects.create(user=self, email=self.email, verified=True, primary=True)

    @factory.post_generation
    def totp(self, create, extracted, **kwargs):
        """Staff have two-factor authentication on, as the admin requires (PORTAL_STAFF_REQUIRE_2FA);
        totp=False makes one without it."""
        wanted = extracted if extracted is not None else (self.is_staff or self.is_superuser)
        if create and wanted:
            TOTP.activate(self, STAFF_TOTP_SECRET)


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    user = factory.SubFactory(UserFactory)
    email = factory.SelfAttribute("user.email")
    full_name = factory.Faker("name")
    address_line1 = factory.Faker("street_address")
    city = factory.Faker("city")
    postal_code = factory.Faker("postcode")
    country = "GB"


class ListedCustomerFactory(CustomerFactory):
    """A customer who opted in to the directory. No password is hashed, so dozens are cheap to make."""

    user = factory.SubFactory(UserFactory, password=None)
    directory_opt_in = True
    bio = factory.Faker("sentence")
    location = factory.Faker("city")


# --- Purchases -----------------------------------------------------------------------------------
# Models are named as strings and services imported where used, so this block needs no new imports.


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "purchases.Product"

    name = factory.Sequence(lambda n: f"Product {n}")
    slug = factory.Sequence(lambda n: f"product-{n}")
    access_url = factory.LazyAttribute(lambda product: f"https://learn.example.com/{product.slug}/")


class OfferFactory(factory.django.DjangoModelFactory):
    """A one-time offer of 49.00 GBP granting one new product (pass products=[...] to choose them)."""

    class Meta:
        model = "purchases.Offer"
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Offer {n}")
    kind = "one_time"
    price_amount = 4900
    currency = "gbp"

    @factory.post_generation
    def products(self, create, extracted, **kwargs):
        if create:
            self.products.set(extracted if extracted is not None else [ProductFactory()])


class PurchaseFactory(factory.django.DjangoModelFactory):
    """A bare purchase row: no access grants, no receipt. Use RecordedPurchaseFactory for a real sale."""

    class Meta:
        model = "purchases.Purchase"

    customer = factory.SubFactory(CustomerFactory)
    offer = factory.SubFactory(OfferFactory)
    amount = factory.LazyAttribute(lambda purchase: purchase.offer.price_amount)
    currency = factory.LazyAttribute(lambda purchase: purchase.offer.currency)


class RecordedPurchaseFactory(factory.django.DjangoModelFactory):
    """A sale recorded through purchases.services.purchase_record: purchase, access grants and receipt."""

    class Meta:
        model = "purchases.Purchase"

    customer = factory.SubFactory(CustomerFactory)
    offer = factory.SubFactory(OfferFactory)
    tax_rate = 0

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        from purchases.services import purchase_record

        return purchase_record(**kwargs)


class ReceiptFactory(factory.django.DjangoModelFactory):
    """A receipt issued through purchases.services.receipt_issue (numbered, with the billing snapshot)."""

    class Meta:
        model = "purchases.Receipt"

    purchase = factory.SubFactory(PurchaseFactory)
    tax_rate = 0

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        from purchases.services import receipt_issue

        return receipt_issue(**kwargs)


# --- Billing -------------------------------------------------------------------------------------


class SubscriptionFactory(factory.django.DjangoModelFactory):
    """A bare subscription mirror row (no processor behind it): active, 12.00 GBP a month."""

    class Meta:
        model = "billing.Subscription"

    customer = factory.SubFactory(CustomerFactory)
    stripe_subscription_id = factory.Sequence(lambda n: f"sub_test{n:06d}")
    status = "active"
    amount = 1200
    currency = "gbp"
    interval = "month"


class CardFactory(factory.django.DjangoModelFactory):
    """A card on file (a mirror row, no processor behind it): the customer's default Visa."""

    class Meta:
        model = "billing.Card"

    customer = factory.SubFactory(CustomerFactory)
    stripe_payment_method_id = factory.Sequence(lambda n: f"pm_test{n:06d}")
    brand = "visa"
    last4 = "4242"
    exp_month = 12
    exp_year = 2030
    is_default = True
