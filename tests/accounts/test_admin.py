"""The contacts console in Django admin: the list, the contact page, adding by hand, emails and custom fields."""

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.forms import TAX_ID_INVALID
from accounts.models import Customer, CustomField, User
from accounts.services import CUSTOM_CHOICE_INVALID, CUSTOM_NUMBER_INVALID, EMAIL_TAKEN
from console.admin.accounts import LOGIN_EMAIL_NOTE
from portal.models import AuditEntry, OutboundEmail
from purchases.models import AccessGrant, Receipt
from purchases.services import refund_record
from tests.factories import (
    CustomerFactory,
    OfferFactory,
    ProductFactory,
    PurchaseFactory,
    RecordedPurchaseFactory,
    SubscriptionFactory,
)

pytestmark = pytest.mark.django_db

LIST_URL = "/admin/accounts/customer/"
NO_INLINE_FORMS = {
    f"{prefix}-{key}": 0
    for prefix in ["purchases", "subscriptions", "cancellation_feedback", "access_grants", "receipts"]
    for key in ["TOTAL_FORMS", "INITIAL_FORMS"]
}


def change_url(customer):
    return f"/admin/accounts/customer/{customer.pk}/change/"


def listed_rows(response):
    return list(response.context["cl"].result_list)


def contact_post(customer, **changes):
    """The contact page's form as submitted, with the given changes."""
    customer.refresh_from_db()
    data = {
        field: getattr(customer, field) or ""
        for field in [
            "full_name",
            "phone",
            "tax_id_type",
            "tax_id_value",
            "address_line1",
            "address_line2",
            "city",
            "region",
            "postal_code",
            "external_user_id",
            "time_zone",
            "bio",
            "location",
            "x_username",
            "instagram_username",
            "linkedin_username",
            "youtube_handle",
            "tiktok_username",
            "website_url",
        ]
    }
    data["country"] = str(customer.country)
    for flag in ["notify_billing_notices", "notify_renewal_reminders", "notify_card_expiry_reminders"]:
        if getattr(customer, flag, False):
            data[flag] = "on"
    if customer.directory_opt_in:
        data["directory_opt_in"] = "on"
    data.update(NO_INLINE_FORMS)
    data.update(changes)
    return data


# --- the list ----------------------------------------------------------------------------------------


def test_the_list_shows_active_subscriptions_and_lifetime_value_per_contact(creator_client):
    customer = CustomerFactory(full_name="Ada Lovelace", country="GB")
    bought = RecordedPurchaseFactory(customer=customer, offer=OfferFactory(price_amount=5000))
    RecordedPurchaseFactory(customer=customer, offer=OfferFactory(price_amount=2000))
    refund_record(purchase=bought, amount=1500)
    SubscriptionFactory(customer=customer, status="active")
    SubscriptionFactory(customer=customer, status="trialing")
    SubscriptionFactory(customer=customer, status="active", paused=True)
    SubscriptionFactory(customer=customer, status="past_due")
    SubscriptionFactory(customer=customer, status="canceled")

    response = creator_client.get(LIST_URL)

    [row] = [c for c in listed_rows(response) if c.pk == customer.pk]
    assert row.active_subscriptions == 2
    assert row.lifetime_value == 5500
    page = response.content.decode()
    assert "Ada Lovelace" in page and customer.email in page and ">GB<" in page
    assert "£55.00" in page


def test_a_contact_who_paid_in_two_currencies_shows_how_many(creator_client):
    customer = CustomerFactory()
    PurchaseFactory(customer=customer, offer=OfferFactory(currency="gbp"))
    PurchaseFactory(customer=customer, offer=OfferFactory(currency="usd"))

    page = creator_client.get(LIST_URL).content.decode()

    assert "2 currencies" in page


def test_the_list_says_only_customers_added_by_hand_get_a_login_email(creator_client):
    page = creator_client.get(LIST_URL).content.decode()

    assert str(LOGIN_EMAIL_NOTE).startswith("Only customers added by hand here get a welcome email")
    assert "Only customers added by hand here get a welcome email" in page


@pytest.mark.parametrize(
    ("query", "field", "value"),
    [
        ("lovelace", "full_name", "Ada Lovelace"),
        ("ada@analytical", "email", "ada@analytical.example"),
        ("crm-4711", "external_user_id", "crm-4711"),
        ("980780684", "tax_id_value", "GB980780684"),
    ],
)
def test_search_finds_a_contact_by_name_email_external_id_or_tax_id(creator_client, query, field, value):
    wanted = CustomerFactory(**{field: value})
    CustomerFactory.create_batch(3)

    response = creator_client.get(LIST_URL, {"q": query})

    assert listed_rows(response) == [wanted]


def test_the_country_filter_offers_only_countries_in_use(creator_client):
    french = CustomerFactory(country="FR")
    CustomerFactory(country="GB")

    response = creator_client.get(LIST_URL, {"country": "FR"})

    [country_filter] = [f for f in response.context["cl"].filter_specs if getattr(f, "parameter_name", "") == "country"]
    assert [code for code, _name in country_filter.lookup_choices] == ["FR", "GB"]
    assert listed_rows(response) == [french]


def test_the_active_subscription_filter(creator_client):
    subscriber, paused, nobody = CustomerFactory(), CustomerFactory(), CustomerFactory()
    SubscriptionFactory(customer=subscriber)
    SubscriptionFactory(customer=paused, paused=True)

    with_one = listed_rows(creator_client.get(LIST_URL, {"active_subscription": "yes"}))
    without = listed_rows(creator_client.get(LIST_URL, {"active_subscription": "no"}))

    assert with_one == [subscriber]
    assert subscriber not in without and {paused, nobody} <= set(without)


def test_the_directory_and_last_activity_filters(creator_client):
    listed = CustomerFactory(directory_opt_in=True, last_activity_at=timezone.now())
    dormant = CustomerFactory(directory_opt_in=False, last_activity_at=timezone.now() - timedelta(days=60))

    in_directory = listed_rows(creator_client.get(LIST_URL, {"directory_opt_in__exact": "1"}))
    changelist = creator_client.get(LIST_URL).context["cl"]
    [activity] = [f for f in changelist.filter_specs if f.title == "last activity"]
    past_week = next(choice for choice in activity.choices(changelist) if choice["display"] == "Past 7 days")
    seen_this_week = listed_rows(creator_client.get(LIST_URL + past_week["query_string"]))

    assert in_directory == [listed]
    assert listed in seen_this_week and dormant not in seen_this_week


def _contacts_with_history(count):
    offer = OfferFactory(products=[ProductFactory()])
    for n in range(count):
        customer = CustomerFactory(user__password=None, country=["GB", "FR", "DE"][n % 3])
        PurchaseFactory(customer=customer, offer=offer)
        SubscriptionFactory(customer=customer)


def test_the_list_costs_the_same_queries_for_5_and_50_contacts(creator_client):
    creator_client.get(LIST_URL)  # warm: session, site settings row
    _contacts_with_history(5)
    with CaptureQueriesContext(connection) as five:
        first = creator_client.get(LIST_URL)
    _contacts_with_history(45)
    with CaptureQueriesContext(connection) as fifty:
        second = creator_client.get(LIST_URL)

    assert len(listed_rows(first)) == 5  # staff (the creator) are not contacts
    assert len(listed_rows(second)) == 50  # one page
    assert len(fifty) == len(five), [q["sql"][:120] for q in fifty.captured_queries]


@pytest.fixture
def valued_contacts(monkeypatch):
    """Seven contacts, three a page, with lifetime values 10.00 … 70.00 and, for four, an active subscription."""
    from console.admin.accounts import CustomerAdmin

    monkeypatch.setattr(CustomerAdmin, "list_per_page", 3)
    contacts = []
    for n in range(1, 8):
        customer = CustomerFactory(user__password=None, full_name=f"Contact {n}")
        PurchaseFactory(customer=customer, offer=OfferFactory(price_amount=n * 1000))
        if n % 2:
            SubscriptionFactory(customer=customer)
        contacts.append(customer)
    return contacts


def _page_subquery(queries) -> str:
    """The SQL of the list's page (the sliced subquery of ids inside the row query)."""
    [rows] = [q["sql"] for q in queries.captured_queries if '"accounts_customer"."id" IN (SELECT' in q["sql"]]
    return rows[rows.index("IN (SELECT") : rows.rindex(" LIMIT ")]


def test_a_later_page_computes_the_totals_only_for_the_rows_it_shows(creator_client, valued_contacts):
    with CaptureQueriesContext(connection) as queries:
        response = creator_client.get(LIST_URL, {"p": 2})

    rows = listed_rows(response)
    # Newest first: contacts 7, 6, 5 are page 1.
    assert [(c.full_name, c.lifetime_value, c.active_subscriptions) for c in rows] == [
        ("Contact 4", 4000, 0),
        ("Contact 3", 3000, 1),
        ("Contact 2", 2000, 0),
    ]
    page = _page_subquery(queries)
    assert "purchases_purchase" not in page and "billing_subscription" not in page, page


@pytest.mark.parametrize(
    ("column", "descending", "key"),
    [
        ("lifetime_value_display", True, lambda c: (-c.lifetime_value, -c.pk)),
        ("lifetime_value_display", False, lambda c: (c.lifetime_value, -c.pk)),
        ("active_subscriptions_display", True, lambda c: (-c.active_subscriptions, -c.pk)),
    ],
)
def test_sorting_by_a_total_orders_the_whole_list_across_pages(
    creator_client, valued_contacts, column, descending, key
):
    index = creator_client.get(LIST_URL).context["cl"].list_display.index(column)
    order = f"-{index}" if descending else str(index)

    shown = []
    for number in (1, 2, 3):
        with CaptureQueriesContext(connection) as queries:
            shown += listed_rows(creator_client.get(LIST_URL, {"o": order, "p": number}))
        page = _page_subquery(queries)  # read before the next request clears the query log

    everyone = listed_rows(creator_client.get(LIST_URL, {"all": ""}))
    assert len(shown) == len(everyone) == 7  # staff (the creator) are not contacts
    assert [c.pk for c in shown] == [c.pk for c in sorted(everyone, key=key)]
    # Only the total sorted by is computed over the whole list; the others only for the page shown.
    if column == "lifetime_value_display":
        assert "purchases_purchase" in page and "billing_subscription" not in page, page
    else:
        assert "billing_subscription" in page and "purchases_purchase" not in page, page


# --- the contact page ------------------------------------------------------------------------------


def test_the_contact_page_shows_purchases_subscriptions_access_receipts_and_history(creator_client, customer):
    purchase = RecordedPurchaseFactory(customer=customer, offer=OfferFactory(name="Pottery course"))
    subscription = SubscriptionFactory(customer=customer, amount=1500)
    receipt = purchase.receipts.get()
    from accounts.services import customer_update_contact

    customer_update_contact(customer=customer, data={"city": "Leeds"}, by=customer.user)

    response = creator_client.get(change_url(customer))

    page = response.content.decode()
    assert response.status_code == 200
    assert "Pottery course" in page  # purchase and access inlines
    assert receipt.number in page
    assert "£15.00 / month" in page
    assert f"/admin/billing/subscription/{subscription.pk}/change/" in page or subscription.get_status_display() in page
    assert "contact.updated" in page and "<del>" in page and "Leeds" in page  # the history, field by field
    assert "purchase.recorded" in page


def test_a_staff_edit_goes_through_the_contact_service(creator_client, creator, customer):
    receipt = RecordedPurchaseFactory(customer=customer).receipts.get()

    response = creator_client.post(change_url(customer), contact_post(customer, full_name="Dana Renamed"))

    assert response.status_code == 302, response.context["adminform"].form.errors
    assert Receipt.objects.get(pk=receipt.pk).billing_name == "Dana Renamed"  # receipts resynced
    entry = AuditEntry.objects.filter(customer=customer, action="contact.updated").latest("pk")
    assert entry.actor == creator and entry.actor_kind == "staff"
    assert entry.changes["full_name"][1] == "Dana Renamed"


def test_a_staff_edit_of_other_fields_is_audited_field_by_field(creator_client, creator, customer):
    creator_client.post(change_url(customer), contact_post(customer, external_user_id="crm-42"))

    customer.refresh_from_db()
    entry = AuditEntry.objects.get(customer=customer, action="customer.updated")
    assert customer.external_user_id == "crm-42"
    assert entry.changes == {"external_user_id": ["", "crm-42"]} and entry.actor == creator


def test_the_admin_checks_a_tax_id_like_the_customer_form(creator_client, customer):
    response = creator_client.post(
        change_url(customer), contact_post(customer, tax_id_type="gb_vat", tax_id_value="GB123", country="GB")
    )

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors["tax_id_value"]
    assert errors == [str(TAX_ID_INVALID) % {"type": "UK VAT number", "example": "GB980780684"}]
    customer.refresh_from_db()
    assert customer.tax_id_value == ""


# --- custom fields ---------------------------------------------------------------------------------


@pytest.fixture
def custom_fields(db):
    return {
        "seats": CustomField.objects.create(key="seats", label="Seats", type="number"),
        "renewal": CustomField.objects.create(key="renewal", label="Renewal date", type="date"),
        "plan": CustomField.objects.create(key="plan", label="Plan", type="choice", choices="Basic\nPro"),
        "notes": CustomField.objects.create(key="notes", label="Notes", type="text"),
    }


def test_custom_fields_are_edited_on_the_contact_page_and_stored_by_key(creator_client, customer, custom_fields):
    response = creator_client.post(
        change_url(customer),
        contact_post(
            customer,
            custom_seats="12.50",
            custom_renewal="2027-03-01",
            custom_plan="Pro",
            custom_notes="Met at the fair",
        ),
    )

    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.custom_field_values == {
        "seats": "12.5",
        "renewal": "2027-03-01",
        "plan": "Pro",
        "notes": "Met at the fair",
    }
    entry = AuditEntry.objects.get(customer=customer, action="custom_fields.updated")
    assert entry.changes["seats"] == ["", "12.5"]


def test_custom_field_values_are_checked_by_type(creator_client, customer, custom_fields):
    response = creator_client.post(
        change_url(customer), contact_post(customer, custom_seats="a dozen", custom_plan="Gold")
    )

    errors = response.context["adminform"].form.errors
    assert errors["custom_seats"] == [str(CUSTOM_NUMBER_INVALID)]
    assert errors["custom_plan"][0].startswith("Select a valid choice")  # the select offers only the choices
    customer.refresh_from_db()
    assert customer.custom_field_values == {}


def test_the_custom_field_service_refuses_a_value_outside_the_choices(customer, custom_fields):
    from django.core.exceptions import ValidationError

    from accounts.services import customer_set_custom_fields

    with pytest.raises(ValidationError) as caught:
        customer_set_custom_fields(customer=customer, values={"plan": "Gold", "seats": "3"}, by=None)

    assert caught.value.message_dict == {"plan": [str(CUSTOM_CHOICE_INVALID) % {"choices": "Basic, Pro"}]}
    customer.refresh_from_db()
    assert customer.custom_field_values == {}  # nothing stored, not even the valid value


# --- adding a customer by hand ---------------------------------------------------------------------


def test_the_add_page_says_plainly_who_gets_a_login_email(creator_client):
    page = creator_client.get("/admin/accounts/customer/add/").content.decode()

    assert "Only customers added by hand here get a welcome email" in page
    assert 'name="offer"' in page


def test_adding_a_customer_by_hand_grants_the_offer_and_emails_a_sign_in_link(
    creator_client, creator, django_capture_on_commit_callbacks, run_tasks
):
    course, community = ProductFactory(name="Course"), ProductFactory(name="Community")
    offer = OfferFactory(products=[course, community])

    with django_capture_on_commit_callbacks(execute=True):
        response = creator_client.post(
            "/admin/accounts/customer/add/",
            {"full_name": "Grace Hopper", "email": "Grace@Navy.example", "offer": offer.pk},
        )
    run_tasks()

    customer = Customer.objects.get(user__email="grace@navy.example")
    assert response.status_code == 302
    assert response["Location"] == LIST_URL
    assert customer.full_name == "Grace Hopper"
    assert not customer.user.has_usable_password()
    assert set(AccessGrant.objects.filter(customer=customer).values_list("product__name", flat=True)) == {
        "Course",
        "Community",
    }
    assert OutboundEmail.objects.get(customer=customer).kind == "welcome"
    [message] = [m for m in mail.outbox if m.to == ["grace@navy.example"]]
    assert re.search(r"/hub/[\w-]+/", message.body)
    assert AuditEntry.objects.filter(customer=customer, action="customer.created", actor=creator).exists()
    messages = [str(m) for m in response.wsgi_request._messages]
    assert "A welcome email with a sign-in link is on its way to grace@navy.example." in messages


def test_adding_a_customer_whose_email_exists_is_refused(creator_client, customer):
    response = creator_client.post(
        "/admin/accounts/customer/add/", {"full_name": "Twin", "email": customer.email.upper()}
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["email"] == [str(EMAIL_TAKEN) % {"email": customer.email.lower()}]
    assert Customer.objects.filter(user__email__iexact=customer.email).count() == 1


def test_customers_who_sign_up_or_are_created_otherwise_get_no_login_email(customer):
    assert not OutboundEmail.objects.filter(customer=customer).exists()


# --- sign-in and password-reset emails ------------------------------------------------------------------


def test_the_action_emails_a_sign_in_link_to_each_selected_customer_but_not_to_staff(creator_client, creator):
    first, second = CustomerFactory(), CustomerFactory()

    response = creator_client.post(
        LIST_URL,
        {"action": "send_login_email", "_selected_action": [first.pk, second.pk, creator.customer.pk]},
    )

    assert response.status_code == 302
    assert set(OutboundEmail.objects.filter(kind="welcome").values_list("customer", flat=True)) == {first.pk, second.pk}
    assert AuditEntry.objects.filter(action="login_email.sent").count() == 2
    assert "Sign-in link emailed to 2 customers." in [str(m) for m in response.wsgi_request._messages]


def test_a_second_sign_in_link_is_a_new_email(creator_client, customer):
    for _ in range(2):
        creator_client.post(f"/admin/accounts/customer/{customer.pk}/send-login-email/")

    assert OutboundEmail.objects.filter(customer=customer, kind="welcome").count() == 2


def test_the_action_sends_allauths_password_reset_email(creator_client, creator):
    customer = CustomerFactory()

    response = creator_client.post(LIST_URL, {"action": "send_password_reset", "_selected_action": [customer.pk]})

    assert response.status_code == 302
    [message] = mail.outbox
    assert message.to == [customer.user.email]
    assert "/accounts/password/reset/key/" in message.body
    assert AuditEntry.objects.get(action="password_reset.sent").customer == customer


def test_the_contact_page_offers_view_as_and_both_emails(creator_client, customer):
    page = creator_client.get(change_url(customer)).content.decode()

    assert f'action="/admin/accounts/customer/{customer.pk}/view-as/"' in page
    assert f'action="/admin/accounts/customer/{customer.pk}/send-login-email/"' in page
    assert f'action="/admin/accounts/customer/{customer.pk}/send-password-reset/"' in page


def test_the_email_buttons_answer_only_to_post(creator_client, customer):
    assert creator_client.get(f"/admin/accounts/customer/{customer.pk}/send-login-email/").status_code == 405
    assert not OutboundEmail.objects.exists()


def test_the_password_reset_button_emails_the_customer(creator_client, customer):
    response = creator_client.post(f"/admin/accounts/customer/{customer.pk}/send-password-reset/")

    assert response["Location"] == change_url(customer)
    assert [m.to for m in mail.outbox] == [[customer.user.email]]


@pytest.mark.parametrize("page", ["contact", "user", "purchase", "receipt"])
def test_no_console_page_links_to_a_portal_page_only_the_customer_can_see(creator_client, customer, page):
    """Portal pages show the signed-in person's own contact and receipts: "View on site" would be a dead end."""
    purchase = RecordedPurchaseFactory(customer=customer)
    url = {
        "contact": change_url(customer),
        "user": f"/admin/accounts/user/{customer.user.pk}/change/",
        "purchase": f"/admin/purchases/purchase/{purchase.pk}/change/",
        "receipt": f"/admin/purchases/receipt/{purchase.receipts.get().pk}/change/",
    }[page]

    response = creator_client.get(url)

    assert response.status_code == 200
    assert "View on site" not in response.content.decode()
    assert "/admin/r/" not in response.content.decode()


def test_the_user_page_shows_the_contact_read_only(creator_client, customer):
    page = creator_client.get(f"/admin/accounts/user/{customer.user.pk}/change/").content.decode()

    assert customer.full_name in page
    assert 'name="customer-0-full_name"' not in page


def test_a_hand_added_customer_can_be_found_by_the_login_email_address(creator_client):
    creator_client.post("/admin/accounts/customer/add/", {"full_name": "", "email": "solo@example.com"})

    assert User.objects.get(email="solo@example.com").customer.email == "solo@example.com"


@pytest.mark.skipif(connection.vendor != "postgresql", reason="trigram indexes exist on PostgreSQL only")
def test_on_postgresql_contact_search_can_use_trigram_indexes(creator):
    from django.contrib import admin
    from django.test import RequestFactory

    from console.admin.accounts import CustomerAdmin

    request = RequestFactory().get(LIST_URL, {"q": "lovelace"})
    request.user = creator
    model_admin = CustomerAdmin(Customer, admin.site)
    queryset, _ = model_admin.get_search_results(request, Customer.objects.all(), "lovelace")
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'accounts_customer'")
        indexes = {row[0] for row in cursor.fetchall()}
        cursor.execute("SET LOCAL enable_seqscan = off")
        plan = queryset.only("pk").explain()

    assert {f"accounts_cust_{c}_trgm" for c in ["full_name", "email", "external_user_id", "tax_id_value"]} <= indexes
    assert "accounts_cust_full_name_trgm" in plan and "accounts_cust_email_trgm" in plan


def test_support_corrects_custom_field_values_as_contact_details(support_client, customer, custom_fields):
    customer.custom_field_values = {"seats": "4", "plan": "Pro"}
    customer.save()

    page = support_client.get(change_url(customer)).content.decode()

    assert 'name="custom_seats"' in page and 'value="4"' in page


def test_a_choice_field_needs_its_choices_and_an_editable_field_must_be_shown(creator_client):
    response = creator_client.post(
        "/admin/accounts/customfield/add/",
        {"label": "Plan", "key": "plan", "type": "choice", "choices": "", "editable_by_customer": "on", "position": 0},
    )

    errors = response.context["adminform"].form.errors
    assert errors["choices"] == ["List the choices, one per line."]
    assert errors["visible_to_customer"] == ["A field the customer can edit must be shown to them."]
    assert not CustomField.objects.exists()


def _bulk_history(customer, count, start=0):
    """`count` purchases, each with its receipt and access grant, written in bulk (no services: speed)."""
    from purchases.models import Purchase

    offer = OfferFactory(products=[ProductFactory()])
    product = offer.products.get()
    now = timezone.now()
    purchases = Purchase.objects.bulk_create(
        Purchase(customer=customer, offer=offer, amount=1000, currency="gbp", purchased_at=now - timedelta(minutes=n))
        for n in range(start, start + count)
    )
    Receipt.objects.bulk_create(
        Receipt(
            number=f"BULK-{start + n:06d}",
            prefix="BULK",
            sequence=start + n + 1,
            purchase=purchase,
            customer=customer,
            currency="gbp",
            subtotal=1000,
            total=1000,
        )
        for n, purchase in enumerate(purchases)
    )
    AccessGrant.objects.bulk_create(
        AccessGrant(customer=customer, product=product, purchase=purchase) for purchase in purchases
    )


def test_a_contacts_page_costs_the_same_queries_for_30_and_5000_purchases(creator_client):
    customer = CustomerFactory(user__password=None)
    _bulk_history(customer, 30)
    creator_client.get(change_url(customer))  # warm: session, site settings row
    with CaptureQueriesContext(connection) as few:
        first = creator_client.get(change_url(customer))
    _bulk_history(customer, 4970, start=30)
    with CaptureQueriesContext(connection) as many:
        second = creator_client.get(change_url(customer))

    assert first.status_code == second.status_code == 200
    assert len(many) == len(few), [q["sql"][:120] for q in many.captured_queries]
    page = second.content.decode()
    assert page.count('href="/admin/purchases/receipt/') <= 25  # the newest rows, not all 5,000
    assert f"?customer__id__exact={customer.pk}" in page and "5000 purchases" in page


def test_staff_are_not_contacts_in_the_list_or_the_export(creator_client, creator, support_user, customer):
    listed = listed_rows(creator_client.get(LIST_URL))
    form = creator_client.get(f"{LIST_URL}export/").context["form"]
    chosen = {name: "on" for name in form.fields if name.startswith("customerresource_")}
    export = creator_client.post(f"{LIST_URL}export/", {"format": "0", "resource": "0", **chosen})

    assert [c.pk for c in listed] == [customer.pk]
    body = export.content.decode()
    assert customer.user.email in body
    assert creator.email not in body and support_user.email not in body
