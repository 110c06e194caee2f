"""Queue the reminder emails that are due (renewals, trials ending, cards expiring); run daily."""

from django.core.management.base import BaseCommand

from billing.services.reminders import reminders_queue
from billing.tasks import reminders_send


class Command(BaseCommand):
    help = (
        "Hand the daily reminder run to the task worker (renewals, trials ending, cards expiring); "
        "each reminder goes out once, however often this runs."
    )

    def add_arguments(self, parser):
        parser.add_argument("--now", action="store_true", help="run it here and wait, instead of on the worker")

    def handle(self, *args, now=False, **options):
        if not now:
            reminders_send.enqueue()
            self.stdout.write(self.style.SUCCESS("Reminder run queued for the task worker."))
            return
        counts = reminders_queue()
        summary = ", ".join(f"{count} {kind}" for kind, count in counts.items())
        self.stdout.write(self.style.SUCCESS(f"Reminders queued: {summary}."))
