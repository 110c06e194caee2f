"""Backfill cards and subscriptions from Stripe, for one customer or for all who have a Stripe id."""

from django.core.management.base import BaseCommand, CommandError

from accounts.models import Customer
from billing.gateways.base import PaymentError
from billing.services import customer_sync_from_processor


class Command(BaseCommand):
    help = "Backfill the card and subscription mirror from Stripe (one customer by email or Stripe id, or all)."

    def add_arguments(self, parser):
        parser.add_argument("--customer", help="a customer's email address or Stripe customer id (cus_…)")

    def handle(self, *args, customer=None, **options):
        customers = Customer.objects.exclude(stripe_customer_id="").order_by("pk")
        if customer:
            customers = customers.filter(stripe_customer_id=customer) | customers.filter(email__iexact=customer)
            if not customers.exists():
                raise CommandError(f"No customer with a Stripe id matches {customer!r}.")
        total = customers.count()
        failures = 0
        for index, one in enumerate(customers.iterator(), start=1):
            try:
                cards, subscriptions = customer_sync_from_processor(customer=one)
            except PaymentError as error:
                failures += 1
                self.stderr.write(f"\n{one.email}: {type(error).__name__}: {error.detail or error.user_message}")
                continue
            finally:
                self._progress(index, total)
        self.stdout.write("")
        if failures:
            raise CommandError(f"{failures} of {total} customers could not be synced; run the command again.")
        self.stdout.write(self.style.SUCCESS(f"Synced {total} customers."))

    def _progress(self, done: int, total: int) -> None:
        width = 30
        filled = width * done // max(total, 1)
        self.stdout.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}", ending="")
        self.stdout.flush()
