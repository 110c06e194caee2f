"""Seed the scale-out test's database; run by test_scale_out.py in the nodes' environment, before they start.

    python tests/scale/cluster_seed.py PASSWORD

Through the project's services, against localstripe: a customer with a card and a live subscription whose
first invoice is paid at the processor but not yet recorded here (the webhook will record it), a second
customer for the sign-in rate limit, and one email queued once with its send task enqueued five times, as
retries and a double enqueue would, for the two workers to race on. Prints one JSON line.
"""

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

SITE_CUSTOMER = "scale-customer@example.com"
RATE_LIMITED = "scale-rate-limited@example.com"
RACED_EMAIL_KEY = "hub_link:scale-out-race"
RACED_ENQUEUES = 5


def main(password: str) -> dict:
    import django

    django.setup()
    from allauth.account.models import EmailAddress
    from django.db import transaction

    from accounts.models import User
    from accounts.services import customer_get_or_create, customer_update_contact
    from billing.gateways.base import get_gateway
    from billing.services import card_set_default, stripe_customer_ensure, subscription_sync
    from console.tasks import email_send
    from portal.models import EmailKind, OutboundEmail
    from portal.outbox import email_queue
    from purchases.models import Offer

    customers = {}
    for email, name in [(SITE_CUSTOMER, "Sam Scale"), (RATE_LIMITED, "Rita Ratelimit")]:
        user = User.objects.create_user(email=email, password=password)
        EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
        customers[email] = customer = customer_get_or_create(user=user)
        customer_update_contact(customer=customer, data={"full_name": name, "country": "GB"}, by=None)

    customer = customers[SITE_CUSTOMER]
    gateway = get_gateway()
    offer = Offer.objects.create(
        name="Scale membership", kind="subscription", interval="month", price_amount=1500, currency="gbp"
    )
    offer.stripe_price_id = gateway.demo_plan_ensure(
        plan_id=f"scale-membership-{offer.pk}", product_name=offer.name, amount=1500, currency="gbp", interval="month"
    )
    offer.save(update_fields=["stripe_price_id"])
    stripe_customer_ensure(customer=customer)
    card_set_default(customer=customer, payment_method_id="pm_card_visa", by=None)
    remote = gateway.demo_subscription_create(
        customer_id=customer.stripe_customer_id, plan_id=offer.stripe_price_id, idempotency_key="scale-out-subscription"
    )
    subscription_sync(remote=remote)

    with transaction.atomic():
        email_queue(customer=customer, kind=EmailKind.HUB_LINK, key=RACED_EMAIL_KEY)
    raced = OutboundEmail.objects.get(key=RACED_EMAIL_KEY)
    for _ in range(RACED_ENQUEUES - 1):
        email_send.enqueue(raced.pk)

    return {
        "customer_email": SITE_CUSTOMER,
        "customer_name": "Sam Scale",
        "customer_id": customer.pk,
        "rate_limited_email": RATE_LIMITED,
        "invoice_id": remote.latest_invoice_id,
        "raced_email_id": raced.pk,
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1])))
