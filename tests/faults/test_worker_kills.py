"""Task workers SIGKILLed again and again while emails go out: none is lost, none is sent twice.

Two `manage.py task_worker` processes on RQ (the production queue) send FAULT_EMAILS emails (300 in
`make test`, bounded for CI; FAULT_EMAILS=1000 or more for the runs recorded in docs/operations.md) through Django's
file backend into a folder, which is the mail server here. Again and again one of them is
killed with SIGKILL together with its work horse (at a random moment once the workers have sent
something since the last kill), and started again as systemd's Restart=always would.
Then `manage.py sweep` re-queues what the dead left behind (an email a killed worker was sending rolls
back to queued; its RQ job is abandoned), until the outbox is empty.

"Sent twice" is counted from the files: two files with one Message-ID. A kill between the file being
written and the row's sent mark being committed would write a second one; the count says whether it did.
"""

import os
import random
import threading
import time
from collections import Counter

from tests.faults.conftest import wait_progress

EMAILS = int(os.environ.get("FAULT_EMAILS", "300"))
KILL_EVERY = float(os.environ.get("FAULT_KILL_EVERY", "1.0"))
WORKERS = 2


def test_workers_killed_with_sigkill_while_emails_go_out_lose_none_and_send_none_twice(make_stack):
    stack = make_stack("rq")
    started = time.monotonic()
    assert stack.seed("emails", str(EMAILS)) == str(EMAILS)
    seeded = time.monotonic()
    names = [f"worker{n}" for n in range(WORKERS)]
    for name in names:
        stack.start_worker(name)

    kills = 0
    stop = threading.Event()
    rng = random.Random(17)

    def sent() -> int:
        return stack.emails_by_status().get("sent", 0)

    def chaos():
        # After each kill, wait until the workers have sent a few more (so the run makes progress however
        # slow the machine is), then kill at a random moment within KILL_EVERY seconds: most kills land
        # mid-task, as the workers are busy.
        nonlocal kills
        while not stop.is_set():
            target = sent() + rng.randint(1, 10)
            while sent() < target and not stop.wait(0.05):
                pass
            if stop.wait(KILL_EVERY * rng.random()):
                return
            name = rng.choice(names)
            stack.kill(name)
            kills += 1
            stack.start_worker(name)  # Restart=always

    def progress():
        # A line a minute, so that a long run stopped before its end still says how far it got.
        while not stop.wait(60):
            print(f"{time.monotonic() - seeded:.0f} s: {sent()} of {EMAILS} sent, {kills} SIGKILLs", flush=True)

    killer = threading.Thread(target=chaos, daemon=True)
    killer.start()
    threading.Thread(target=progress, daemon=True).start()
    try:
        # Kill while at least nine in ten go out; the rest are sent by workers left alone.
        wait_progress(stack, "nine in ten emails sent under SIGKILLs", sent, EMAILS * 0.9)
    finally:
        stop.set()
        killer.join()
    # Then sweep as the timer does, but only once the queue has drained: what is still waiting then was
    # left behind by a killed worker (its job died with the work horse). Sweeping while a thousand jobs
    # are still queued would only queue a thousand more beside them at each sweep.
    sweeps = 0
    while True:
        wait_progress(stack, "the queue drained", lambda: -_queue_length(stack), 0)
        time.sleep(3)  # the last jobs taken from the queue finish
        if sent() >= EMAILS and _queue_length(stack) == 0:
            break
        stack.manage("sweep", "--older-than=0")  # what the timer does every five minutes
        sweeps += 1
        assert sweeps <= 10, f"{stack.emails_by_status()}\n{stack.logs()}"
    finished = time.monotonic()

    statuses = stack.emails_by_status()
    files = stack.mail_files()
    per_message = Counter(message["Message-ID"] for message in files)
    repeated = {message_id: n for message_id, n in per_message.items() if n > 1}
    report = (
        f"{EMAILS} emails, {WORKERS} workers, {kills} SIGKILLs, {sweeps} sweeps; "
        f"seeded in {seeded - started:.1f} s, sent in {finished - seeded:.1f} s; "
        f"rows {statuses}; {len(files)} files, {len(per_message)} Message-IDs, {len(repeated)} sent twice"
    )
    print(report)
    (stack.tmp / "report.txt").write_text(report)
    assert kills >= 3, report  # the faults did happen
    assert statuses == {"sent": EMAILS}, report  # 0 lost
    assert len(per_message) == EMAILS, report
    assert repeated == {}, report  # 0 sent twice


def _queue_length(stack) -> int:
    import redis

    client = redis.Redis.from_url(stack.redis.url(0))
    try:
        return client.llen("rq:queue:default")
    finally:
        client.close()
