"""The creator's and support's console in Django admin, through the real pages in Chromium.

The creator (a superuser) finds and edits a contact, adds one by hand, imports a CSV, refunds part of
a purchase, pauses and cancels a subscription and views the portal as a customer; support reads why a
contact cancelled and corrects their details, but cannot change an offer. Payments go through the
in-memory fake gateway (the tests' default), whose state the live server's thread shares with the test.
"""

import csv
import re

import pytest
from django.core import mail
from playwright.sync_api import expect

from accounts.middleware import VIEW_AS_REFUSED
from accounts.models import Customer
from accounts.services import support_group_ensure
from billing.gateways.fake import FakeGateway
from billing.models import Subscription, SubscriptionStatus
from billing.services import card_set_default, invoice_record_paid, stripe_customer_ensure, subscription_sync
from portal.models import AuditEntry, OutboundEmail
from purchases.models import AccessGrant, Offer, Purchase, Receipt, Refund
from purchases.services import purchase_record
from tests.factories import DEFAULT_PASSWORD, CustomerFactory, OfferFactory, ProductFactory, UserFactory

from .conftest import enter_staff_totp_code, field

pytestmark = pytest.mark.e2e

OLD_ADDRESS = {"address_line1": "1 Old Road", "city": "London", "postal_code": "SW1A 1AA", "country": "GB"}
ADMIN_URL = re.compile(r"/admin/$")


# --- People and what they bought -----------------------------------------------------------------


@pytest.fixture
def gateway():
    """The fake processor, empty for each test (its state is per class: the live server sees it too)."""
    FakeGateway.reset()
    yield FakeGateway()
    FakeGateway.reset()


@pytest.fixture
def creator(transactional_db):
    user = UserFactory(email="creator@example.com", is_staff=True, is_superuser=True)
    CustomerFactory(user=user, full_name="The Creator")
    return user


@pytest.fixture
def support_user(transactional_db):
    """A member of the Support group. Browser tests flush the database, and with it the group its data
    migration made: it is made again from the migration's own list of permissions."""
    user = UserFactory(email="support@example.com", is_staff=True)
    user.groups.add(support_group_ensure())
    CustomerFactory(user=user, full_name="Support Agent")
    return user


@pytest.fixture
def ada(transactional_db):
    """A customer with two receipts, among other contacts."""
    CustomerFactory.create_batch(3, user__password=None)
    customer = CustomerFactory(full_name="Ada Lovelace", time_zone="UTC", **OLD_ADDRESS)
    for name in ("Watercolour course", "Sketching club"):
        purchase_record(customer=customer, offer=OfferFactory(name=name))
    return customer


@pytest.fixture
def subscriber(transactional_db, gateway):
    """A customer with a card and an active monthly membership at the processor, and its first invoice paid."""
    customer = CustomerFactory(full_name="Grace Hopper", time_zone="UTC", **OLD_ADDRESS)
    stripe_customer_ensure(customer=customer)
    card_set_default(customer=customer, payment_method_id="pm_first", by=None)
    OfferFactory(name="Membership", kind="subscription", interval="month", price_amount=1500, stripe_price_id="price_m")
    remote = gateway.subscription_create(customer_id=customer.stripe_customer_id, amount=1500, price_id="price_m")
    subscription = subscription_sync(remote=remote)
    invoice = gateway.invoice_create(
        customer_id=customer.stripe_customer_id,
        amount=1500,
        subscription_id=subscription.stripe_subscription_id,
        price_id="price_m",
        charge_id="ch_membership",
    )
    invoice_record_paid(invoice=invoice)
    return customer


# --- Pages -----------------------------------------------------------------------------------------


def sign_in_to_admin(page, email: str) -> None:
    """Open the admin signed out: its sign-in page hands over to allauth's form, which returns to the admin."""
    page.goto("/admin/")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/admin/$"))
    page.locator("input[name=login]").fill(email)
    page.locator("input[name=password]").fill(DEFAULT_PASSWORD)
    page.locator("form").filter(has=page.locator("input[name=password]")).locator("button[type=submit]").click()
    enter_staff_totp_code(page)  # staff have two-factor on, as the admin requires
    expect(page).to_have_url(ADMIN_URL)
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()


@pytest.fixture
def creator_page(page, creator):
    sign_in_to_admin(page, creator.email)
    return page


@pytest.fixture
def support_page(page, support_user):
    sign_in_to_admin(page, support_user.email)
    return page


def success_message(page):
    return page.locator("ul.messagelist li.success")


def open_contact(page, customer) -> None:
    """Find the contact with the list's search, by surname, and open them."""
    page.goto("/admin/accounts/customer/")
    page.locator("#searchbar").fill(customer.full_name.split()[-1])
    page.locator("#changelist-search").get_by_role("button", name="Search").click()
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(1)
    expect(rows).to_contain_text(customer.user.email)
    rows.get_by_role("link", name=customer.full_name).click()
    expect(page).to_have_url(re.compile(rf"/admin/accounts/customer/{customer.pk}/change/(\?.*)?$"))


def readonly(page, name: str):
    """The shown value of a read-only field on an admin page."""
    return page.locator(f".field-{name} .readonly")


# --- The creator ----------------------------------------------------------------------------------


def test_the_creator_finds_a_contact_edits_the_address_and_the_receipts_follow(creator_page, ada):
    page = creator_page
    open_contact(page, ada)
    expect(field(page, "Address line 1")).to_have_value("1 Old Road")

    field(page, "Address line 1").fill("22 New Street")
    field(page, "City").fill("Manchester")
    page.get_by_role("button", name="Save", exact=True).click()

    expect(page).to_have_url(re.compile(r"/admin/accounts/customer/\?q=Lovelace$"))  # back to the search
    expect(success_message(page)).to_contain_text("Ada Lovelace")
    expect(success_message(page)).to_contain_text("was changed successfully")
    ada.refresh_from_db()
    assert (ada.address_line1, ada.city, ada.postal_code) == ("22 New Street", "Manchester", "SW1A 1AA")
    # Both receipts follow the contact, and the contact's history says who changed what.
    assert sorted(Receipt.objects.filter(customer=ada).values_list("billing_address_line1", "billing_city")) == [
        ("22 New Street", "Manchester"),
        ("22 New Street", "Manchester"),
    ]
    assert AuditEntry.objects.filter(customer=ada, action="contact.updated", actor__email="creator@example.com")

    # The receipt record, opened from the contact page, shows the new address.
    open_contact(page, ada)
    expect(page.locator(".field-history")).to_contain_text("22 New Street")
    receipts = page.locator("#receipts-group")
    receipt = Receipt.objects.filter(customer=ada).order_by("number").first()
    # The portal's receipt page is the signed-in customer's own: staff get no dead "View on site" link to it.
    expect(receipts.get_by_role("link", name="View on site")).to_have_count(0)
    receipts.locator("tr", has_text=receipt.number).locator("a.inlinechangelink").click()
    expect(page).to_have_url(re.compile(rf"/admin/purchases/receipt/{receipt.pk}/change/$"))
    expect(readonly(page, "billing_address_line1")).to_have_text("22 New Street")
    expect(readonly(page, "billing_city")).to_have_text("Manchester")
    expect(page.get_by_role("link", name="View on site")).to_have_count(0)


def test_the_creator_adds_a_customer_by_hand_who_gets_the_offer_and_a_welcome_email(creator_page, run_tasks):
    page = creator_page
    course = ProductFactory(name="Course")
    OfferFactory(name="Course offer", products=[course])
    page.goto("/admin/accounts/customer/")
    page.get_by_role("link", name=re.compile("Add customer")).click()
    expect(page.get_by_text("Only customers added by hand here get a welcome email")).to_be_visible()

    field(page, "Full name").fill("Katherine Johnson")
    field(page, "Email").fill("Katherine@NASA.example")
    field(page, "Offer to grant").select_option(label="Course offer")
    page.get_by_role("button", name="Save", exact=True).click()

    expect(page).to_have_url(re.compile(r"/admin/accounts/customer/$"))
    expect(page.locator("ul.messagelist")).to_contain_text(
        "A welcome email with a sign-in link is on its way to katherine@nasa.example."
    )
    expect(page.locator("#result_list")).to_contain_text("Katherine Johnson")
    customer = Customer.objects.get(user__email="katherine@nasa.example")
    assert customer.full_name == "Katherine Johnson"
    assert list(AccessGrant.objects.filter(customer=customer).values_list("product__name", flat=True)) == ["Course"]
    assert OutboundEmail.objects.get(customer=customer).kind == "welcome"
    assert run_tasks() >= 1
    [welcome] = [message for message in mail.outbox if message.to == ["katherine@nasa.example"]]
    assert re.search(r"/hub/[\w:-]+/", welcome.body), welcome.body


def write_csv(path, rows: list[dict]):
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def upload(page, path) -> None:
    page.goto("/admin/accounts/customer/")
    page.get_by_role("link", name="Import").click()
    expect(page).to_have_url(re.compile(r"/admin/accounts/customer/import/$"))
    page.locator("input[type=file][name=import_file]").set_input_files(path)  # CSV is the only format
    page.get_by_role("button", name="Submit").click()


IMPORTED = ["mary@example.com", "alan@example.com"]


def test_the_creator_imports_contacts_from_a_csv_after_a_preview(creator_page, tmp_path):
    page = creator_page
    path = write_csv(
        tmp_path / "contacts.csv",
        [
            {"email": "mary@example.com", "full_name": "Mary Somerville", "country": "GB", "city": "Burntisland"},
            {"email": "alan@example.com", "full_name": "Alan Turing", "country": "gb", "city": "Wilmslow"},
        ],
    )

    upload(page, path)

    expect(page.get_by_text("Below is a preview of data to be imported")).to_be_visible()
    preview = page.locator("table.import-preview")
    expect(preview.locator("tbody tr")).to_have_count(2)
    expect(preview).to_contain_text("Mary Somerville")
    expect(preview.locator("tbody tr").first).to_contain_text("New")
    assert not Customer.objects.filter(user__email__in=IMPORTED).exists()  # nothing until confirmed

    page.get_by_role("button", name="Confirm import").click()

    expect(page).to_have_url(re.compile(r"/admin/accounts/customer/$"))
    expect(success_message(page)).to_contain_text("2 new")
    imported = Customer.objects.filter(user__email__in=IMPORTED).order_by("full_name")
    assert [(c.full_name, c.country.code, c.city) for c in imported] == [
        ("Alan Turing", "GB", "Wilmslow"),
        ("Mary Somerville", "GB", "Burntisland"),
    ]
    assert not OutboundEmail.objects.filter(customer__in=imported).exists()  # imports send no welcome email


def test_a_csv_with_bad_rows_shows_each_rows_errors_and_imports_nothing(creator_page, tmp_path):
    page = creator_page
    path = write_csv(
        tmp_path / "contacts.csv",
        [
            {"email": "mary@example.com", "full_name": "Mary Somerville", "country": "GB", "tax_id_type": ""},
            {"email": "not-an-address", "full_name": "Nobody", "country": "GB", "tax_id_type": ""},
            {"email": "alan@example.com", "full_name": "Alan Turing", "country": "Atlantis", "tax_id_type": ""},
        ],
    )

    upload(page, path)

    expect(page.get_by_role("heading", name="Some rows failed to validate")).to_be_visible()
    invalid = page.locator("table.import-preview tbody tr")
    expect(invalid).to_have_count(2)
    expect(invalid.nth(0)).to_contain_text("Enter a valid email address.")
    expect(invalid.nth(1)).to_contain_text("country")
    expect(page.get_by_role("button", name="Confirm import")).to_have_count(0)
    assert not Customer.objects.filter(user__email__in=[*IMPORTED, "not-an-address"]).exists()


def test_the_creator_refunds_part_of_a_purchase_on_its_confirmation_page(creator_page, subscriber, gateway):
    page = creator_page
    purchase = Purchase.objects.get(customer=subscriber)
    page.goto(f"/admin/purchases/purchase/{purchase.pk}/change/")
    page.get_by_role("link", name="Refund", exact=True).click()

    expect(page).to_have_url(re.compile(rf"/admin/purchases/purchase/{purchase.pk}/refund/$"))
    expect(page.get_by_text("Paid £15.00; £15.00 is left to refund.")).to_be_visible()
    expect(page.get_by_text("through Stripe")).to_be_visible()
    field(page, "Amount to refund").fill("4.50")
    field(page, "Reason").fill("Missed the first week")
    page.get_by_role("button", name="Refund", exact=True).click()

    expect(page).to_have_url(re.compile(rf"/admin/purchases/purchase/{purchase.pk}/change/$"))
    expect(success_message(page)).to_have_text("Refunded £4.50.")
    expect(page.locator("#refunds-group")).to_contain_text("Missed the first week")
    refund = Refund.objects.get(purchase=purchase)
    assert (refund.amount, refund.reason, refund.created_by.email) == (
        450,
        "Missed the first week",
        "creator@example.com",
    )
    [at_processor] = gateway.refunds.values()
    assert (at_processor.id, at_processor.charge_id, at_processor.amount) == (
        refund.stripe_refund_id,
        "ch_membership",
        450,
    )
    purchase.refresh_from_db()
    assert (purchase.amount_refunded, purchase.amount_remaining) == (450, 1050)


def test_the_creator_pauses_then_cancels_a_subscription(creator_page, subscriber, gateway):
    page = creator_page
    subscription = Subscription.objects.get(customer=subscriber)
    change_page = re.compile(rf"/admin/billing/subscription/{subscription.pk}/change/$")
    page.goto(f"/admin/billing/subscription/{subscription.pk}/change/")

    page.get_by_role("link", name="Pause", exact=True).click()
    expect(page.get_by_text("No invoices are charged while paused")).to_be_visible()
    page.get_by_role("button", name="Pause", exact=True).click()

    expect(page).to_have_url(change_page)
    expect(success_message(page)).to_have_text("Done: Pause Membership.")
    subscription.refresh_from_db()
    assert subscription.paused and subscription.status == SubscriptionStatus.ACTIVE
    assert gateway.subscriptions[subscription.stripe_subscription_id].paused
    # A paused subscription offers resuming or cancelling, no second pause.
    expect(page.get_by_role("link", name="Pause", exact=True)).to_have_count(0)
    expect(page.get_by_role("link", name="Resume", exact=True)).to_be_visible()

    page.get_by_role("link", name="Cancel now", exact=True).click()
    expect(page.get_by_text("The subscription ends today")).to_be_visible()
    page.get_by_role("button", name="Cancel now", exact=True).click()

    expect(page).to_have_url(change_page)
    expect(success_message(page)).to_have_text("Done: Cancel Membership now.")
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.CANCELED
    assert gateway.subscriptions[subscription.stripe_subscription_id].status == "canceled"
    expect(page.get_by_role("link", name="Cancel now", exact=True)).to_have_count(0)
    # Both changes are audited as the creator's, and the membership's access ended with it.
    changes = [
        {key: entry.changes[key] for key in ("paused", "status") if key in entry.changes}
        for entry in AuditEntry.objects.filter(
            customer=subscriber, action="subscription.changed", actor__email="creator@example.com"
        ).order_by("pk")
    ]
    assert changes == [{"paused": [False, True]}, {"status": ["active", "canceled"]}]
    assert not AccessGrant.objects.filter(customer=subscriber, revoked_at=None).exists()
    emailed = set(OutboundEmail.objects.filter(customer=subscriber).values_list("kind", flat=True))
    assert {"subscription_paused", "subscription_canceled"} <= emailed


def test_view_as_customer_shows_their_portal_read_only_until_the_creator_stops(creator_page, ada, console_errors):
    page = creator_page
    open_contact(page, ada)

    page.get_by_role("button", name="View as customer").click()

    expect(page).to_have_url(re.compile(r"^https?://[^/]+/$"))
    banner = page.locator(".view-as")
    expect(banner).to_contain_text("You are viewing the portal as Ada Lovelace. Nothing can be changed while you do.")
    page.goto("/settings/contact/")
    expect(field(page, "Address line 1")).to_have_value("1 Old Road")  # Ada's details, not the creator's

    field(page, "Address line 1").fill("99 Sneaky Lane")
    page.get_by_role("button", name="Save", exact=True).click()

    # The form posts with htmx: the refusal (403) reloads the page, which says why.
    expect(page.locator(".message--error")).to_have_text(str(VIEW_AS_REFUSED))
    expect(field(page, "Address line 1")).to_have_value("1 Old Road")
    assert console_errors.take_expected(r"status of 403"), "the save was not refused"
    ada.refresh_from_db()
    assert ada.address_line1 == "1 Old Road"

    page.locator(".view-as").get_by_role("button", name="Stop viewing").click()

    expect(page).to_have_url(re.compile(rf"/admin/accounts/customer/{ada.pk}/change/(\?.*)?$"))
    expect(page.locator("ul.messagelist")).to_contain_text("You stopped viewing the portal as Ada Lovelace.")
    page.goto("/")
    expect(page.locator(".view-as")).to_have_count(0)
    assert [e.action for e in AuditEntry.objects.filter(customer=ada, action__startswith="view_as").order_by("pk")] == [
        "view_as.started",
        "view_as.ended",
    ]


# --- Support ----------------------------------------------------------------------------------------


def test_support_reads_why_a_contact_cancelled_corrects_their_address_but_cannot_change_an_offer(support_page, ada):
    from billing.models import CancellationFeedback, CancellationReason
    from tests.factories import SubscriptionFactory

    CancellationFeedback.objects.create(
        customer=ada,
        subscription=SubscriptionFactory(customer=ada, status="canceled"),
        reason=CancellationReason.TOO_EXPENSIVE,
        comment="Too dear for me this winter",
    )
    page = support_page
    open_contact(page, ada)
    expect(page.get_by_role("heading", name="Change customer")).to_be_visible()
    expect(page.locator("body")).to_contain_text("Too dear for me this winter")  # why they left

    field(page, "Address line 1").fill("3 Corrected Lane")  # the customer asked support to fix a typo
    page.get_by_role("button", name="Save", exact=True).click()
    expect(success_message(page)).to_contain_text("was changed successfully")
    ada.refresh_from_db()
    assert ada.address_line1 == "3 Corrected Lane"
    assert AuditEntry.objects.filter(customer=ada, action="contact.updated", actor__email="support@example.com")
    assert set(Receipt.objects.filter(customer=ada).values_list("billing_address_line1", flat=True)) == {
        "3 Corrected Lane"
    }

    offer = Offer.objects.get(name="Watercolour course")
    page.goto(f"/admin/purchases/offer/{offer.pk}/change/")
    expect(page.get_by_role("heading", name="View offer")).to_be_visible()
    expect(readonly(page, "price")).to_have_text("£49.00")  # money, not minor units
    expect(page.locator("input[name=price_amount]")).to_have_count(0)
    expect(page.get_by_role("button", name="Save", exact=True)).to_have_count(0)

    # A forged save, with the page's own CSRF token and session, is refused and changes nothing.
    token = page.locator("input[name=csrfmiddlewaretoken]").first.get_attribute("value")
    response = page.request.post(
        f"/admin/purchases/offer/{offer.pk}/change/",
        form={
            "csrfmiddlewaretoken": token,
            "name": "Free for all",
            "kind": "one_time",
            "price_amount": "0",
            "currency": "gbp",
            "is_active": "on",
            "_save": "Save",
        },
        headers={"Referer": page.url},
    )
    assert response.status == 403
    offer.refresh_from_db()
    assert (offer.name, offer.price_amount) == ("Watercolour course", 4900)
