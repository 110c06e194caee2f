"""Run localstripe, answering in the current Stripe shape, with its state file where we choose.

    python -m portal.localstripe --port 8420 --state var/localstripe.pickle [--from-scratch]

localstripe hard-codes its pickle path; this launcher points the store's load and dump at
--state, puts `portal.localstripe_current` in front of localstripe's app (whose state is kept in the
same store, so in the same file) and serves it on 127.0.0.1 only. It imports nothing from Django.
"""

import argparse
import logging
import os
import pickle

from aiohttp import web
from localstripe import resources, server

from portal import localstripe_current


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8420)
    parser.add_argument("--state", required=True, help="path of the state file")
    parser.add_argument("--from-scratch", action="store_true", help="ignore an existing state file")
    args = parser.parse_args(argv)
    state = os.path.abspath(args.state)
    os.makedirs(os.path.dirname(state), exist_ok=True)

    def try_load_from_disk(store):
        try:
            with open(state, "rb") as handle:
                old = pickle.load(handle)
        except FileNotFoundError:
            return
        store.clear()
        store.update(old)

    def dump_to_disk(store):
        tmp = f"{state}.tmp"
        with open(tmp, "wb") as handle:
            pickle.dump(dict(store), handle, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, state)

    resources.Store.try_load_from_disk = try_load_from_disk
    resources.Store.dump_to_disk = dump_to_disk
    localstripe_current.install(server.app)
    if not args.from_scratch:
        resources.store.try_load_from_disk()

    access_log = logging.getLogger("aiohttp.access")
    access_log.setLevel(logging.DEBUG)
    access_log.addHandler(logging.StreamHandler())
    # localstripe's own start() listens on every interface; a fake payment processor stays on this machine.
    web.run_app(server.app, host="127.0.0.1", port=args.port, access_log=access_log)


if __name__ == "__main__":
    main()
