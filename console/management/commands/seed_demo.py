import contextlib
import logging
import secrets
from datetime import timedelta
from decimal import Decimal

from allauth.account.models import EmailAddress
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from accounts.services import (
    customer_get_or_create,
    customer_update_contact,
    customer_update_social,
    support_group_ensure,
)
from portal.services import site_settings_update
from purchases.models import Offer, Product, Purchase
from purchases.services import purchase_record, refund_record

DEMO_USERS = {
    "creator": "creator@example.com",
    "support": "support@example.com",
    "customer": "customer@example.com",
}

DEMO_CONTACT = {
    "full_name": "Dana Demo",
    "email": "customer@example.com",
    "phone": "+44 20 7946 0958",
    "address_line1": "1 Demo Street",
    "address_line2": "",
    "city": "London",
    "region": "",
    "postal_code": "EC1A 1BB",
    "country": "GB",
    "tax_id_type": "gb_vat",
    "tax_id_value": "GB980780684",
}


class Command(BaseCommand):
    help = "Create (or reset) the demo creator, support user and customer, all with one password."

    def add_arguments(self, parser):
        parser.add_argument("--password", help="password for all demo users (generated when left out)")

    def handle(self, *args, password=None, **options):
        password = password or secrets.token_urlsafe(12)
        if len(password) < 4:
            raise CommandError("The demo password must have at least 4 characters.")
        with transaction.atomic():
            users = {
                role: self._user(email, password, staff=role != "customer", superuser=role == "creator")
                for role, email in DEMO_USERS.items()
            }
            users["support"].groups.add(support_group_ensure())
            customer = customer_get_or_create(user=users["customer"])
            customer_update_contact(customer=customer, data=DEMO_CONTACT, by=None)
            customer_update_social(
                customer=customer,
                data={
                    "bio": "Lifelong learner. Building things with clay and code.",
                    "location": "London",
                    "x_username": "danademo",
                    "website_url": "https://example.com/",
                    "directory_opt_in": True,
                },
            )
            self._catalogue_and_purchases(customer, by=users["creator"])
        self._billing(customer)
        for role, email in DEMO_USERS.items():
            self.stdout.write(f"  {role:<9} {email}")
        self.stdout.write(self.style.SUCCESS(f"Demo users ready; password: {password}"))

    def _billing(self, customer):
        """A card and an active subscription at the payment processor (localstripe under `make run`)."""
        from billing.demo import demo_billing_seed
        from billing.gateways.base import PaymentError

        try:
            with _plan_lookup_misses_unlogged():
                subscription = demo_billing_seed(
                    customer=customer, offer=Offer.objects.get(name=DEMO_OFFERS["membership"][0])
                )
        except PaymentError as error:
            self.stderr.write(
                f"  No demo card or subscription: the payment processor did not answer ({error.user_message})."
            )
            return
        if subscription is not None:
            self.stdout.write(f"  subscription {subscription.stripe_subscription_id} ({subscription.status})")

    def _user(self, email, password, *, staff, superuser):
        user, _ = User.objects.get_or_create(email=email)
        user.is_staff = staff
        user.is_superuser = superuser
        user.is_active = True
        user.set_password(password)
        user.save()
        EmailAddress.objects.update_or_create(user=user, email=email, defaults={"verified": True, "primary": True})
        customer_get_or_create(user=user)
        return user

    def _catalogue_and_purchases(self, customer, *, by):
        site_settings_update(
            data={
                "business_name": "Clay & Code Studio",
                "business_address": "12 Kiln Lane\nBristol BS1 4DJ\nUnited Kingdom",
                "business_tax_id": "GB980780684",
                "business_email": "help@example.com",
            }
        )
        products = {}
        for slug, name, description in DEMO_PRODUCTS:
            products[slug], _ = Product.objects.update_or_create(
                slug=slug,
                defaults={"name": name, "description": description, "access_url": f"https://learn.example.com/{slug}/"},
            )
        offers = {}
        for key, (name, kind, amount, interval, installments, product_slugs) in DEMO_OFFERS.items():
            offers[key], _ = Offer.objects.update_or_create(
                name=name,
                defaults={
                    "kind": kind,
                    "price_amount": amount,
                    "currency": "gbp",
                    "interval": interval,
                    "installments": installments,
                },
            )
            offers[key].products.set([products[slug] for slug in product_slugs])
        if Purchase.objects.filter(customer=customer).exists():
            return  # purchases are seeded once; re-running only resets passwords and details
        now = timezone.now()
        for key, days_ago in [
            ("course", 200),
            ("membership", 95),
            ("membership", 65),
            ("membership", 35),
            ("membership", 5),
            ("ebook", 120),
            ("plan", 40),
        ]:
            purchase = purchase_record(
                customer=customer,
                offer=offers[key],
                by=by,
                tax_rate=Decimal("20"),
                purchased_at=now - timedelta(days=days_ago),
            )
            if key == "ebook":
                refund_record(purchase=purchase, amount=400, reason="Damaged download, partial refund", by=by)


class _PlanLookupMiss(logging.Filter):
    """Drop the gateway's warning that the demo plan is not there yet: the demo looks it up to create it."""

    def filter(self, record):
        return not record.getMessage().startswith("stripe plan_retrieve: invalid request")


@contextlib.contextmanager
def _plan_lookup_misses_unlogged():
    gateway_logger = logging.getLogger("billing.gateways.stripe")
    miss = _PlanLookupMiss()
    gateway_logger.addFilter(miss)
    try:
        yield
    finally:
        gateway_logger.removeFilter(miss)


DEMO_PRODUCTS = [
    ("pottery-basics", "Pottery Basics", "Twelve lessons from wedging to glazing."),
    ("studio-community", "Studio Community", "The members' forum and monthly live sessions."),
    ("glaze-recipes", "Glaze Recipes (ebook)", "Sixty tested cone 6 glazes."),
    ("wheel-mastery", "Wheel Mastery", "The advanced throwing course."),
]
DEMO_OFFERS = {
    "course": ("Pottery Basics course", "one_time", 4900, "", None, ["pottery-basics"]),
    "membership": ("Studio membership", "subscription", 1200, "month", None, ["studio-community"]),
    "ebook": ("Glaze Recipes ebook", "one_time", 900, "", None, ["glaze-recipes"]),
    "plan": ("Wheel Mastery in 3 payments", "payment_plan", 3000, "month", 3, ["wheel-mastery"]),
}
