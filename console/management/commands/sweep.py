"""Start again the work that dead workers left behind; run every few minutes (deploy/ has a timer)."""

from datetime import timedelta

from django.core.management.base import BaseCommand

from billing.services.pushes import customer_pushes_requeue
from billing.webhooks import webhook_events_retry
from console.emails import outbox_requeue
from portal.housekeeping import abandoned_jobs_requeue, stuck_tasks_release


class Command(BaseCommand):
    help = "Queue again emails, tasks, Stripe pushes and events that were left behind (a worker or node died)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than", type=int, default=10, help="minutes an email, push or event may be overdue (10)"
        )
        parser.add_argument("--stuck-after", type=int, default=15, help="minutes a task may run (15)")

    def handle(self, *args, older_than, stuck_after, **options):
        tasks = stuck_tasks_release(stuck_after=timedelta(minutes=stuck_after)) + abandoned_jobs_requeue()
        emails = outbox_requeue(older_than=timedelta(minutes=older_than))
        pushes = customer_pushes_requeue(older_than=timedelta(minutes=older_than))
        events = webhook_events_retry(older_than=timedelta(minutes=older_than))
        self.stdout.write(
            self.style.SUCCESS(
                f"{tasks} task(s) made ready again, {emails} email(s) queued again, "
                f"{pushes} Stripe push(es) queued again, {events} Stripe event(s) applied"
            )
        )
