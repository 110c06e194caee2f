"""Time only the admin contact list over 100,000 contacts: step 6 of bench/run.py, without gunicorn or wrk.

    .venv/bin/python bench/admin_list.py [--contacts 100000] [--database-url postgres://…/portal_bench]

The same production settings, the same seeded contacts (bulk-inserted once into the database, then
reused) and the same timings (bench/run.py's admin_timing: median of 5 after a warm-up, in process)
as `make bench`, in about a minute once the contacts exist.
"""

import argparse
import os
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import BENCH_DIR, DEFAULT_DATABASE_URL, admin_timing, bench_environment, ensure_database  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument(
        "--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL), help="PostgreSQL"
    )
    parser.add_argument("--redis-url", default="", help="cache (default: database)")
    args = parser.parse_args()

    ensure_database(args.database_url)
    # Its own static files, so that it can run next to `make bench`.
    os.environ.update({**bench_environment(args), "STATIC_ROOT": str(BENCH_DIR / "admin-list-static")})
    import django

    django.setup()
    from django.core.management import call_command

    from bench import seed

    call_command("migrate", verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)
    print(f"seeding {args.contacts:,} contacts (once per database)…", flush=True)
    seed.contacts_seed(count=args.contacts)
    rows = admin_timing(contacts=args.contacts, password="bench-" + uuid.uuid4().hex)
    print(f"\nadmin contact list, {args.contacts:,} contacts (median of 5, in process):\n")
    print("| request | median ms | min | max | of which SQL | queries |")
    print("|---|---:|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['what']} (`{row['path']}`) | {row['median_ms']:.1f} | {row['min_ms']:.1f} "
            f"| {row['max_ms']:.1f} | {row['sql_ms']:.1f} | {row['queries']} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
