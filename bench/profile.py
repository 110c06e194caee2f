"""Profile one page of the benchmark in process with pyinstrument, as the seeded customer sees it.

    make install                                # pyinstrument is a development dependency
    .venv/bin/python bench/profile.py /settings/profile/ [--requests 50] [--html var/bench/profile.html]
    .venv/bin/python bench/profile.py /billing/ --calls     # Python calls a request: steady on a loaded machine

Uses bench/run.py's database and settings (run that once first, so the data is seeded), signs the
benchmark customer in, makes one warm-up request, then profiles --requests more and prints where the
time went, with the queries each request made.
"""

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    from bench.run import DEFAULT_DATABASE_URL, bench_environment

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path")
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--html", help="also write pyinstrument's HTML report here")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument("--redis-url", default="")
    parser.add_argument("--all", action="store_true", help="show library frames too")
    parser.add_argument("--flat", action="store_true", help="list functions by their own time instead of a tree")
    parser.add_argument(
        "--templates", action="store_true", help="CPU time per template (inclusive) instead of a profile"
    )
    parser.add_argument(
        "--calls",
        action="store_true",
        help="Python function calls a request (cProfile: deterministic, so comparable on a loaded machine)",
    )
    args = parser.parse_args()
    os.environ.update(bench_environment(args))

    import django

    django.setup()
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from pyinstrument import Profiler

    from accounts.models import User
    from bench.seed import CUSTOMER_EMAIL

    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(User.objects.get(email=CUSTOMER_EMAIL), backend="accounts.backends.PortalAuthenticationBackend")
    response = client.get(args.path, secure=True)
    print(f"{args.path}: {response.status_code}, {len(response.content):,} bytes")
    with CaptureQueriesContext(connection) as queries:
        client.get(args.path, secure=True)
    for query in queries.captured_queries:
        print(f"  {query['time']}s  {query['sql'][:160]}")

    if args.templates:
        _template_times(client, args.path, args.requests)
        return
    if args.calls:
        _calls(client, args.path, args.requests)
        return
    profiler = Profiler(interval=0.0005)
    start = time.perf_counter()
    with profiler:
        for _ in range(args.requests):
            client.get(args.path, secure=True)
    elapsed = time.perf_counter() - start
    print(f"{args.requests} requests: {elapsed / args.requests * 1000:.1f} ms each (in process, profiled)")
    if args.flat:  # time spent in each function itself, largest first: where a deep template tree hides it
        from pyinstrument.renderers import ConsoleRenderer

        print(profiler.output(ConsoleRenderer(unicode=True, color=False, flat=True, show_all=True))[:6000])
    else:
        print(profiler.output_text(unicode=True, color=False, show_all=args.all))
    if args.html:
        Path(args.html).write_text(profiler.output_html())


def _template_times(client, path: str, requests: int) -> None:
    """CPU time spent rendering each template, inclusive of what it includes, per request."""
    from collections import defaultdict

    from django.template.base import Template

    spent, renders = defaultdict(float), defaultdict(int)
    original = Template.render

    def timed(self, context):
        start = time.process_time()
        try:
            return original(self, context)
        finally:
            spent[self.origin.template_name or "(string)"] += time.process_time() - start
            renders[self.origin.template_name or "(string)"] += 1

    Template.render = timed
    try:
        start = time.process_time()
        for _ in range(requests):
            client.get(path, secure=True)
        total = (time.process_time() - start) / requests * 1000
    finally:
        Template.render = original
    print(f"{total:.2f} ms CPU a request in all (templates timed, so a little more than untimed)")
    print("inclusive ms/request  renders/request  template")
    for name, seconds in sorted(spent.items(), key=lambda item: -item[1])[:25]:
        print(f"{seconds / requests * 1000:20.2f}  {renders[name] / requests:15.0f}  {name}")


def _calls(client, path: str, requests: int) -> None:
    """Function calls a request in all, then the 40 functions with the most cumulative time and their calls."""
    # This file's folder comes first on sys.path, and its name would stand in for the standard library's
    # `profile`, which cProfile imports.
    here = str(Path(__file__).resolve().parent)
    sys.path[:] = [entry for entry in sys.path if str(Path(entry or ".").resolve()) != here]
    sys.modules.pop("profile", None)
    import cProfile
    import pstats

    profile = cProfile.Profile()
    profile.enable()
    for _ in range(requests):
        client.get(path, secure=True)
    profile.disable()
    stats = pstats.Stats(profile)
    print(f"{stats.total_calls / requests:,.0f} calls a request ({stats.prim_calls / requests:,.0f} primitive)")
    rows = sorted(stats.stats.items(), key=lambda item: -item[1][3])[:40]  # by cumulative time
    print("calls/request  cumulative ms/request  function")
    for (filename, line, name), (_, calls, _, cumulative, _) in rows:
        where = filename.rsplit("site-packages/", 1)[-1].replace(str(ROOT) + "/", "")
        print(f"{calls / requests:13,.0f}  {cumulative / requests * 1000:21.2f}  {where}:{line}({name})")


if __name__ == "__main__":
    main()
