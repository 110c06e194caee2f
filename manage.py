#!/usr/bin/env python
"""Management commands in a checkout; an installed portal has the same as the `portal` command."""

from portal.cli import main

if __name__ == "__main__":
    main()
