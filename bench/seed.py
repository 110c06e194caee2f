"""The benchmark's data, made through the project's own services (imported by bench/run.py after django.setup()).

Idempotent: a second run finds the customer, their purchases, cards and the contacts and adds only
what is missing, so only the first run pays for seeding.
"""

import json
import re
import time
import unicodedata
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from allauth.account.models import EmailAddress
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import Customer, User
from accounts.services import customer_get_or_create, customer_update_contact
from billing.gateways.base import get_gateway
from billing.models import WebhookEvent
from billing.services import card_set_default, stripe_customer_ensure, subscription_sync
from purchases.models import Offer, Product, Purchase, Receipt
from purchases.services import purchase_record, refund_record

CUSTOMER_EMAIL = "bench-customer@example.com"
ADMIN_EMAIL = "bench-creator@example.com"
CONTACT_PREFIX = "bench-contact-"
CARDS = ["pm_bench_visa_1", "pm_bench_visa_2", "pm_bench_visa_3"]
SUBSCRIPTION_PRICE = "price_bench_membership"
EVENT_PREFIX = "evt_bench_"
# A Stripe customer the portal does not know: customer.updated for it is stored and its application
# queued (the request's whole cost); a worker would then find no one, with no call to the processor.
UNKNOWN_STRIPE_CUSTOMER = "cus_bench_not_ours"

CONTACT = {
    "full_name": "Bea Bench",
    "phone": "+44 20 7946 0000",
    "address_line1": "1 Load Street",
    "address_line2": "Flat 2",
    "city": "Leeds",
    "region": "",
    "postal_code": "LS1 1AA",
    "country": "GB",
    "tax_id_type": "gb_vat",
    "tax_id_value": "GB980780684",
}


@dataclass(frozen=True)
class Seeded:
    customer: Customer
    receipt_number: str
    purchases: int
    receipts: int
    cards: int
    subscriptions: int
    subscription_pk: int


def customer_seed(*, password: str, purchases: int) -> Seeded:
    """The signed-in customer of the load test: contact details, `purchases` purchases with receipts
    (every tenth partly refunded), three cards and two live subscriptions mirrored from the fake gateway."""
    user, _ = User.objects.get_or_create(email=CUSTOMER_EMAIL)
    user.set_password(password)
    user.save(update_fields=["password"])
    EmailAddress.objects.update_or_create(user=user, email=CUSTOMER_EMAIL, defaults={"verified": True, "primary": True})
    customer = customer_get_or_create(user=user)
    customer_update_contact(customer=customer, data=CONTACT, by=None)

    offers = _offers()
    have = Purchase.objects.filter(customer=customer).count()
    start = timezone.now() - timedelta(days=purchases + 1)
    for n in range(have, purchases):
        with transaction.atomic():
            purchase = purchase_record(
                customer=customer,
                offer=offers[n % len(offers)],
                purchased_at=start + timedelta(days=n),
                tax_rate=Decimal("20"),
            )
            if n % 10 == 0:
                refund_record(purchase=purchase, amount=100, reason="Partial refund (benchmark data)")
    _billing(customer, offers[-1])
    if connection.vendor == "postgresql":
        # Planner statistics as a live database has them: without autovacuum (off on some test servers)
        # the freshly seeded tables have none, and the plans are guesses.
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")

    receipt = Receipt.objects.filter(customer=customer, purchase__refunds__isnull=False).order_by("-issued_at").first()
    return Seeded(
        customer=customer,
        receipt_number=receipt.number,
        purchases=Purchase.objects.filter(customer=customer).count(),
        receipts=Receipt.objects.filter(customer=customer).count(),
        cards=customer.cards.count(),
        subscriptions=customer.subscriptions.count(),
        subscription_pk=customer.subscriptions.order_by("pk").values_list("pk", flat=True).first(),
    )


def _offers() -> list[Offer]:
    offers = []
    for n in range(1, 4):
        products = [
            Product.objects.update_or_create(
                slug=f"bench-{n}-{m}",
                defaults={"name": f"Bench product {n}.{m}", "access_url": f"https://learn.example.com/bench-{n}-{m}/"},
            )[0]
            for m in (1, 2)
        ]
        kind = {"kind": "subscription", "interval": "month", "stripe_price_id": SUBSCRIPTION_PRICE} if n == 3 else {}
        offer, _ = Offer.objects.update_or_create(
            name=f"Bench offer {n}", defaults={"price_amount": 1000 * n, "currency": "gbp", **kind}
        )
        offer.products.set(products)
        offers.append(offer)
    return offers


def _billing(customer: Customer, subscription_offer: Offer) -> None:
    """Cards and subscriptions through the billing services. The fake gateway lives in this process
    only, which is enough: the billing page reads the mirror and never calls the processor on GET."""
    if customer.cards.count() == len(CARDS) and customer.subscriptions.count() == 2:
        return
    customer.cards.all().delete()
    customer.subscriptions.all().delete()
    Customer.objects.filter(pk=customer.pk).update(stripe_customer_id="")
    customer.stripe_customer_id = ""
    stripe_customer_ensure(customer=customer)
    for payment_method in CARDS:
        card_set_default(customer=customer, payment_method_id=payment_method, by=None)
    gateway = get_gateway()
    for amount in (subscription_offer.price_amount, subscription_offer.price_amount * 2):
        subscription_sync(
            remote=gateway.subscription_create(
                customer_id=customer.stripe_customer_id, amount=amount, price_id=SUBSCRIPTION_PRICE
            )
        )


def admin_seed(*, password: str) -> User:
    from allauth.mfa.models import Authenticator
    from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret

    user, _ = User.objects.get_or_create(email=ADMIN_EMAIL)
    user.is_staff = user.is_superuser = True
    user.set_password(password)
    user.save()
    customer_get_or_create(user=user)
    if not Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists():
        TOTP.activate(user, generate_totp_secret())  # the admin opens only to staff with two-factor on
    return user


def contacts_seed(*, count: int, batch: int = 10_000) -> int:
    """`count` contacts (user + customer, no password) for the admin list, bulk-inserted once.

    Names come from Faker with a fixed seed, addresses are spread over common mail providers, so the
    admin's search meets data shaped like a real list (a surname matches a few hundred contacts, a
    provider tens of thousands) rather than 100,000 near-identical rows."""
    from faker import Faker

    have = Customer.objects.filter(external_user_id__startswith=CONTACT_PREFIX).count()
    fake = Faker(["en_GB", "en_US"])
    countries = ["GB", "US", "DE", "FR", "NL", "IE", "ES", "IT", "AU", "CA"]
    now = timezone.now()
    for first in range(have, count, batch):
        numbers = range(first, min(first + batch, count))
        people = [_contact(fake, n) for n in numbers]
        with transaction.atomic():
            users = User.objects.bulk_create([User(email=email, password="!", date_joined=now) for _, email in people])
            Customer.objects.bulk_create(
                [
                    Customer(
                        user=user,
                        email=user.email,
                        full_name=name,
                        external_user_id=f"{CONTACT_PREFIX}{n:06d}",
                        city="Bristol",
                        country=countries[n % len(countries)],
                        created_at=now - timedelta(minutes=count - n),
                        last_activity_at=now - timedelta(hours=n % 5000) if n % 3 else None,
                    )
                    for n, (name, _), user in zip(numbers, people, users, strict=True)
                ]
            )
        if first + batch >= count and connection.vendor == "postgresql":
            # What autovacuum does to a live table: fresh statistics, and the trigram indexes' pending
            # lists merged (right after a bulk insert every search would scan those lists).
            with connection.cursor() as cursor:
                cursor.execute("VACUUM ANALYZE accounts_user")
                cursor.execute("VACUUM ANALYZE accounts_customer")
    return Customer.objects.filter(external_user_id__startswith=CONTACT_PREFIX).count()


MAIL_PROVIDERS = ["gmail.com"] * 6 + ["outlook.com"] * 3 + ["yahoo.com", "icloud.com", "proton.me", "example.org"]


def _contact(fake, n: int) -> tuple[str, str]:
    """A (full name, unique email) pair for contact number n, the same on every run."""
    fake.seed_instance(n)
    first, last = fake.first_name(), fake.last_name()
    local = unicodedata.normalize("NFKD", f"{first}.{last}").encode("ascii", "ignore").decode().lower()
    local = re.sub(r"[^a-z.]", "", local)
    return f"{first} {last}", f"{local}{n}@{MAIL_PROVIDERS[n % len(MAIL_PROVIDERS)]}"


def contact_probe(n: int = 42_170) -> Customer:
    """One seeded contact, whose surname and email the admin timing searches for."""
    return Customer.objects.get(external_user_id=f"{CONTACT_PREFIX}{n:06d}")


def webhook_events_reset() -> int:
    """Forget the deliveries of earlier runs, and the application tasks they queued (the benchmark runs
    no worker), so each run stores every event afresh."""
    from django_tasks_db.models import DBTaskResult

    DBTaskResult.objects.filter(task_path="billing.tasks.webhook_apply", status="READY").delete()
    return WebhookEvent.objects.filter(stripe_event_id__startswith=EVENT_PREFIX).delete()[0]


def webhook_deliveries(*, path: Path, count: int, secret: str, run_id: str) -> Path:
    """Write `count` distinct signed customer.updated deliveries, one "signature<TAB>body" a line."""
    import hashlib
    import hmac

    timestamp = int(time.time())
    with path.open("w") as out:
        for n in range(count):
            body = webhook_body(event_id=f"{EVENT_PREFIX}{run_id}_{n:07d}", created=timestamp)
            digest = hmac.new(secret.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256).hexdigest()
            out.write(f"t={timestamp},v1={digest}\t{body}\n")
    return path


def webhook_body(*, event_id: str, created: int) -> str:
    return json.dumps(
        {
            "id": event_id,
            "object": "event",
            "type": "customer.updated",
            "created": created,
            "data": {"object": {"id": UNKNOWN_STRIPE_CUSTOMER, "object": "customer", "name": "Not a portal customer"}},
            "livemode": False,
        }
    )
