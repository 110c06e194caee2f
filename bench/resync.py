"""Time the receipt resync that follows a contact edit, for one customer with many receipts.

    .venv/bin/python bench/resync.py [--receipts 10000] [--runs 7] [--database-url postgres://…/portal_bench]

Uses its own database (created when missing; default postgres://postgres@127.0.0.1:5432/portal_bench),
migrates it, gives one customer N receipts, then times `customer_update_contact` with a new address
(the contact save, the audit entries and the one-UPDATE resync, all in one transaction) and, in the
same run, the same save for a customer with no receipts, so the ratio shows what the receipts cost.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def ensure_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin_url = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin_url, autocommit=True) as connection:
        exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            connection.execute(f'CREATE DATABASE "{name}"')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--receipts", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/portal_bench"),
    )
    args = parser.parse_args()

    if args.database_url.startswith("postgres"):
        ensure_database(args.database_url)
    os.environ["DATABASE_URL"] = args.database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz")
    os.environ.setdefault("EMAIL_URL", "locmem:")
    os.environ["LOG_LEVEL"] = "WARNING"

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from accounts.models import Customer, User
    from accounts.services import customer_update_contact
    from purchases.models import Offer, Purchase, Receipt

    call_command("migrate", verbosity=0)
    run_id = int(time.time())
    heavy = Customer.objects.create(
        user=User.objects.create_user(f"bench-heavy-{run_id}@example.com"),
        full_name="Bench Heavy",
        email=f"bench-heavy-{run_id}@example.com",
    )
    light = Customer.objects.create(
        user=User.objects.create_user(f"bench-light-{run_id}@example.com"),
        full_name="Bench Light",
        email=f"bench-light-{run_id}@example.com",
    )
    offer = Offer.objects.create(name=f"Bench offer {run_id}", price_amount=1000, currency="gbp")
    purchase = Purchase.objects.create(customer=heavy, offer=offer, amount=1000, currency="gbp")
    Receipt.objects.bulk_create(
        [
            Receipt(
                number=f"BENCH{run_id}-{n:06d}",
                prefix=f"B{run_id}"[:12],
                sequence=n,
                purchase=purchase,
                customer=heavy,
                currency="gbp",
                lines=[],
                subtotal=1000,
                total=1000,
            )
            for n in range(1, args.receipts + 1)
        ],
        batch_size=2000,
    )

    def timed(customer, n):
        data = {"address_line1": f"{n} Benchmark Road", "city": "Leeds", "postal_code": "LS1 1AA", "country": "GB"}
        start = time.perf_counter()
        with CaptureQueriesContext(connection) as queries:
            customer_update_contact(customer=customer, data=data, by=None)
        elapsed = time.perf_counter() - start
        updates = sum(1 for q in queries.captured_queries if q["sql"].startswith('UPDATE "purchases_receipt"'))
        return elapsed, updates

    heavy_times, light_times, update_counts = [], [], set()
    for n in range(args.runs):
        elapsed, updates = timed(heavy, n)
        heavy_times.append(elapsed)
        update_counts.add(updates)
        light_times.append(timed(light, n)[0])
    followed = Receipt.objects.filter(customer=heavy, billing_address_line1=f"{args.runs - 1} Benchmark Road").count()

    heavy_ms = statistics.median(heavy_times) * 1000
    light_ms = statistics.median(light_times) * 1000
    pg = connection.pg_version if connection.vendor == "postgresql" else 0
    print(f"database: {connection.vendor} {pg // 10000}.{pg % 10000}" if pg else f"database: {connection.vendor}")
    print(f"receipts resynced per save: {followed} of {args.receipts}")
    print(f"UPDATE statements on purchases_receipt per save: {sorted(update_counts)}")
    print(
        f"contact save + resync of {args.receipts} receipts: median {heavy_ms:.1f} ms "
        f"(min {min(heavy_times) * 1000:.1f}, max {max(heavy_times) * 1000:.1f}, {args.runs} runs)"
    )
    print(f"same save, customer without receipts:    median {light_ms:.1f} ms")
    print(f"ratio: {heavy_ms / light_ms:.1f}x")

    Receipt.objects.filter(customer=heavy).delete()
    Purchase.objects.filter(pk=purchase.pk).delete()
    offer.delete()
    for customer in (heavy, light):
        customer.audit_entries.all().delete()
        user = customer.user
        customer.delete()
        user.delete()


if __name__ == "__main__":
    main()
