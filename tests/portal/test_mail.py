"""The mail backends EMAIL_URL picks: `file://` writes one .eml per message that a mail program opens."""

import email
from email import policy

from django.core.mail import EmailMultiAlternatives

from portal.mail import eml_summary
from portal.settings import mailer_from_url


def test_file_urls_write_one_eml_file_per_message(settings, tmp_path):
    settings.MAILERS = {"default": mailer_from_url(f"file://{tmp_path}/mail")}
    message = EmailMultiAlternatives("Your receipt", "Plain text", "shop@example.com", ["ada@example.com"])
    message.attach_alternative("<p>HTML</p>", "text/html")

    assert message.send() == 1
    EmailMultiAlternatives("Second", "Body", "shop@example.com", ["ada@example.com"]).send()

    files = sorted((tmp_path / "mail").glob("*.eml"))
    assert len(files) == 2
    parsed = [email.message_from_bytes(path.read_bytes(), policy=policy.default) for path in files]
    receipt = next(m for m in parsed if m["Subject"] == "Your receipt")
    assert receipt["To"] == "ada@example.com"
    assert receipt.get_body(("plain",)).get_content().strip() == "Plain text"
    assert receipt.get_body(("html",)).get_content().strip() == "<p>HTML</p>"
    assert b"\r\n" in files[0].read_bytes()  # as mail travels, so any mail program opens it


def test_a_message_appears_in_the_folder_only_once_it_is_whole(settings, tmp_path, monkeypatch):
    import os

    settings.MAILERS = {"default": mailer_from_url(f"file://{tmp_path}")}
    seen_while_writing = []
    rename = os.replace

    def replace(source, target):
        seen_while_writing.extend(tmp_path.glob("*.eml"))  # a watcher looking just before the rename
        rename(source, target)

    monkeypatch.setattr("portal.mail.os.replace", replace)
    EmailMultiAlternatives("Your receipt", "Plain text", "shop@example.com", ["ada@example.com"]).send()

    assert seen_while_writing == []
    [path] = tmp_path.iterdir()
    assert path.suffix == ".eml"
    assert email.message_from_bytes(path.read_bytes(), policy=policy.default)["To"] == "ada@example.com"


def test_the_reader_prints_the_headers_and_the_text_of_a_written_message(settings, tmp_path):
    settings.MAILERS = {"default": mailer_from_url(f"file://{tmp_path}")}
    message = EmailMultiAlternatives("Café receipt", "Total: £49.00", "shop@example.com", ["ada@example.com"])
    message.attach_alternative("<p>Total: £49.00</p>", "text/html")
    message.send()

    [path] = tmp_path.glob("*.eml")
    summary = eml_summary(path)

    assert "Subject: Café receipt" in summary
    assert "To: ada@example.com" in summary
    assert summary.rstrip().endswith("Total: £49.00")
