"""The `portal` command: Django's management commands for an installed portal (`portal migrate`, …)."""

import os
import sys


def main(argv: list[str] | None = None) -> None:
    """Run a management command with the portal's settings unless DJANGO_SETTINGS_MODULE names others."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv if argv is None else argv)
