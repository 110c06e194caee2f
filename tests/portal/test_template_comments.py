"""Django's `{# … #}` comments end on their own line: one spread over lines renders as text on the page."""

from pathlib import Path

import portal

TEMPLATES = Path(portal.__file__).parent / "templates"


def test_no_template_opens_a_one_line_comment_it_closes_on_another_line():
    unclosed = [
        f"{path.relative_to(TEMPLATES)}:{number}"
        for path in sorted(TEMPLATES.rglob("*.*"))
        if path.suffix in {".html", ".txt"}
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if "{#" in line and "#}" not in line.split("{#", 1)[1]
    ]

    assert unclosed == []
