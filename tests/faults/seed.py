"""Seed the fault suite's database, in the portal's environment (run by tests/faults/ as a subprocess).

python tests/faults/seed.py customer EMAIL PASSWORD   a verified customer who can sign in
python tests/faults/seed.py emails N                   N emails queued for that customer, each enqueued
"""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")


def customer(address: str, password: str) -> None:
    from allauth.account.models import EmailAddress

    from accounts.models import User
    from accounts.services import customer_get_or_create

    user = User.objects.create_user(email=address, password=password)
    EmailAddress.objects.create(user=user, email=address, primary=True, verified=True)
    customer_get_or_create(user=user)


def emails(count: int) -> None:
    """Queue `count` hub-link emails through email_queue(), as the portal does, and enqueue their sends."""
    from django.db import transaction

    from accounts.models import Customer
    from portal.models import EmailKind, OutboundEmail
    from portal.outbox import email_queue

    first = OutboundEmail.objects.count()
    target = Customer.objects.order_by("pk").first()
    for start in range(0, count, 500):
        with transaction.atomic():  # each email's send task is enqueued when its batch commits
            for number in range(first + start, first + min(start + 500, count)):
                email_queue(customer=target, kind=EmailKind.HUB_LINK, key=f"fault:{number}")
    print(OutboundEmail.objects.count() - first)


if __name__ == "__main__":
    import django

    django.setup()
    command, *arguments = sys.argv[1:]
    if command == "customer":
        customer(*arguments)
    else:
        emails(int(arguments[0]))
