"""Remove the sign-ups whose address nobody verified: run it daily (docs/operations.md)."""

from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from console.services import unverified_signups_remove


class Command(BaseCommand):
    help = (
        "Delete accounts made on the sign-up page whose address was not verified within the given number of days "
        "and that hold nothing (no purchase, subscription, card, access or Stripe customer; never signed in)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--days",
            type=int,
            default=None,
            help="remove those that joined more than this many days ago (default: UNVERIFIED_SIGNUP_MAX_AGE_DAYS)",
        )

    def handle(self, *args, days=None, **options):
        days = settings.UNVERIFIED_SIGNUP_MAX_AGE_DAYS if days is None else days
        if days < 1:
            raise CommandError("--days must be 1 or more: a sign-up needs time to open its verification email.")
        removed = unverified_signups_remove(joined_before=timezone.now() - timedelta(days=days))
        self.stdout.write(self.style.SUCCESS(f"Removed {removed} unverified sign-ups older than {days} days."))
