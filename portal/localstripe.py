"""Run localstripe with its state file where we choose, not in /tmp/localstripe.pickle.

    python -m portal.localstripe --port 8420 --state var/localstripe.pickle [--from-scratch]

localstripe hard-codes its pickle path; this launcher points the store's load and dump at
--state and then hands over to localstripe's own server. It imports nothing from Django.
"""

import argparse
import os
import pickle
import sys

from localstripe import resources, server


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
    sys.argv = [sys.argv[0], "--port", str(args.port)] + (["--from-scratch"] if args.from_scratch else [])
    server.start()


if __name__ == "__main__":
    main()
