"""The two staff roles: the creator (a superuser) and Support (a group made by migration), against a customer.

Support sees contacts and runs the purchase and subscription actions; it cannot change offers, products,
the site settings or custom field definitions, nor import or export contacts."""

import pytest
from django.contrib.auth.models import Group

from accounts.models import SUPPORT_GROUP, Customer
from portal.models import AuditEntry, OutboundEmail, SiteSettings
from purchases.models import AccessGrant, Offer
from tests.factories import OfferFactory, RecordedPurchaseFactory

pytestmark = pytest.mark.django_db

SUPPORT_PERMISSIONS = {
    "accounts.view_customer",
    "accounts.change_customer",
    "accounts.view_as_customer",
    "accounts.send_login_email",
    "accounts.view_customfield",
    "purchases.view_product",
    "purchases.view_offer",
    "purchases.view_purchase",
    "purchases.view_receipt",
    "purchases.view_refund",
    "purchases.add_refund",
    "purchases.view_accessgrant",
    "purchases.add_accessgrant",
    "billing.view_card",
    "billing.view_subscription",
    "billing.change_subscription",
    "billing.view_cancellationfeedback",
    "portal.view_auditentry",
}

OK, DENIED, TO_LOGIN = "ok", "denied", "to login"


@pytest.fixture(params=["creator", "support", "customer"])
def role(request, client):
    """A client signed in as the creator, a support agent or a plain customer."""
    user = {
        "creator": lambda: request.getfixturevalue("creator"),
        "support": lambda: request.getfixturevalue("support_user"),
        "customer": lambda: request.getfixturevalue("customer").user,
    }[request.param]()
    client.force_login(user, backend="accounts.backends.PortalAuthenticationBackend")
    client.role = request.param
    return client


@pytest.fixture
def subject(db):
    """A customer whose contact the staff work on, with a purchase (and so a grant and a receipt)."""
    purchase = RecordedPurchaseFactory(customer__full_name="Subject Customer")
    return purchase.customer


def outcome(response) -> str:
    if response.status_code == 403:
        return DENIED
    if response.status_code == 302 and response["Location"].startswith("/admin/login/"):
        return TO_LOGIN
    assert response.status_code in (200, 302), response.status_code
    return OK


PAGES = {
    # name: (method, path, {role: expected})
    "contacts list": ("get", "/admin/accounts/customer/", {"creator": OK, "support": OK}),
    "contact page": ("get", "/admin/accounts/customer/{pk}/change/", {"creator": OK, "support": OK}),
    "add a contact": ("get", "/admin/accounts/customer/add/", {"creator": OK, "support": DENIED}),
    "custom fields": ("get", "/admin/accounts/customfield/", {"creator": OK, "support": OK}),
    "add a custom field": ("get", "/admin/accounts/customfield/add/", {"creator": OK, "support": DENIED}),
    "import contacts": ("get", "/admin/accounts/customer/import/", {"creator": OK, "support": DENIED}),
    "export contacts": ("get", "/admin/accounts/customer/export/", {"creator": OK, "support": DENIED}),
    "site settings": ("get", "/admin/portal/sitesettings/1/change/", {"creator": OK, "support": DENIED}),
    "offers": ("get", "/admin/purchases/offer/", {"creator": OK, "support": OK}),
    "purchases": ("get", "/admin/purchases/purchase/", {"creator": OK, "support": OK}),
    "receipts": ("get", "/admin/purchases/receipt/", {"creator": OK, "support": OK}),
    "access grants": ("get", "/admin/purchases/accessgrant/", {"creator": OK, "support": OK}),
    "audit trail": ("get", "/admin/portal/auditentry/", {"creator": OK, "support": OK}),
    "cancellation reasons": ("get", "/admin/billing/cancellationfeedback/", {"creator": OK, "support": OK}),
    "users": ("get", "/admin/accounts/user/", {"creator": OK, "support": DENIED}),
    "dashboard": ("get", "/admin/", {"creator": OK, "support": OK}),
    "view as customer": ("post", "/admin/accounts/customer/{pk}/view-as/", {"creator": OK, "support": OK}),
    "send a sign-in link": (
        "post",
        "/admin/accounts/customer/{pk}/send-login-email/",
        {"creator": OK, "support": OK},
    ),
    "send a password reset": (
        "post",
        "/admin/accounts/customer/{pk}/send-password-reset/",
        {"creator": OK, "support": OK},
    ),
}


@pytest.mark.parametrize("page", PAGES, ids=PAGES)
def test_permission_matrix(role, subject, page):
    SiteSettings.objects.get_or_create(pk=1)
    method, path, expected = PAGES[page]

    response = getattr(role, method)(path.format(pk=subject.pk))

    assert outcome(response) == expected.get(role.role, TO_LOGIN)


def test_the_support_group_holds_exactly_its_permissions():
    group = Group.objects.get(name=SUPPORT_GROUP)

    granted = {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.select_related("content_type")}

    assert granted == SUPPORT_PERMISSIONS


def test_a_support_group_made_again_holds_what_the_migrations_gave_it():
    from accounts.services import support_group_ensure

    Group.objects.filter(name=SUPPORT_GROUP).delete()

    group = support_group_ensure()

    granted = {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.select_related("content_type")}
    assert granted == SUPPORT_PERMISSIONS


def test_support_reads_why_a_contact_cancelled_on_the_contact_page(support_client, subject):
    from billing.models import CancellationFeedback, CancellationReason
    from tests.factories import SubscriptionFactory

    subscription = SubscriptionFactory(customer=subject)
    CancellationFeedback.objects.create(
        subscription=subscription, customer=subject, reason=CancellationReason.TOO_EXPENSIVE, comment="Dear in winter"
    )

    page = support_client.get(f"/admin/accounts/customer/{subject.pk}/change/").content.decode()

    assert "Dear in winter" in page


def test_support_corrects_a_contacts_details_through_the_contact_service(support_client, support_user, subject):
    from tests.accounts.test_admin import contact_post

    page = support_client.get(f"/admin/accounts/customer/{subject.pk}/change/")
    post = support_client.post(
        f"/admin/accounts/customer/{subject.pk}/change/", contact_post(subject, full_name="Corrected Name")
    )

    assert 'name="_save"' in page.content.decode()
    assert post.status_code == 302
    assert Customer.objects.get(pk=subject.pk).full_name == "Corrected Name"
    entries = AuditEntry.objects.filter(customer=subject, actor=support_user, actor_kind="staff")
    assert any("full_name" in entry.changes for entry in entries)


def test_support_cannot_erase_or_add_contacts(support_client, subject):
    assert support_client.post(f"/admin/accounts/customer/{subject.pk}/delete/").status_code == 403
    assert support_client.get("/admin/accounts/customer/add/").status_code == 403


def test_support_cannot_change_an_offer_or_a_product(support_client):
    offer = OfferFactory(name="Course", price_amount=4900)
    product = offer.products.get()

    offer_post = support_client.post(f"/admin/purchases/offer/{offer.pk}/change/", {"name": "Cheap", "price_amount": 1})
    product_post = support_client.post(f"/admin/purchases/product/{product.pk}/change/", {"name": "Renamed"})

    assert (offer_post.status_code, product_post.status_code) == (403, 403)
    assert Offer.objects.get(pk=offer.pk).price_amount == 4900
    assert product.__class__.objects.get(pk=product.pk).name == product.name


def test_support_cannot_change_the_site_settings(support_client):
    site = SiteSettings.objects.get_or_create(pk=1)[0]

    response = support_client.post("/admin/portal/sitesettings/1/change/", {"business_name": "Hijacked"})

    assert response.status_code == 403
    assert SiteSettings.objects.get(pk=1).business_name == site.business_name


def test_support_revokes_access_with_the_purchase_action(support_client, support_user, subject):
    grant = AccessGrant.objects.get(customer=subject)

    response = support_client.post(
        "/admin/purchases/accessgrant/", {"action": "revoke_selected", "_selected_action": [grant.pk]}
    )

    assert response.status_code == 302
    grant.refresh_from_db()
    assert grant.revoked_by == support_user
    assert AuditEntry.objects.filter(action="access.revoked", actor=support_user).exists()


def test_support_sends_a_sign_in_link(support_client, support_user, subject):
    response = support_client.post(
        "/admin/accounts/customer/", {"action": "send_login_email", "_selected_action": [subject.pk]}
    )

    assert response.status_code == 302
    assert OutboundEmail.objects.get(kind="welcome").customer == subject
    assert AuditEntry.objects.get(action="login_email.sent").actor == support_user


def test_support_has_no_delete_and_no_export_action(support_client, subject):
    response = support_client.get("/admin/accounts/customer/")

    actions = {name for name, _label in response.context["action_form"].fields["action"].choices if name}
    assert actions == {"send_login_email", "send_password_reset"}


def test_the_creator_changes_the_site_settings_and_it_is_audited(creator_client, creator):
    SiteSettings.objects.get_or_create(pk=1)
    form = creator_client.get("/admin/portal/sitesettings/1/change/").context["adminform"].form
    data = {name: value for name, value in form.initial.items() if value is not None and name != "logo"}
    data.update(
        business_name="Clay Studio",
        receipt_prefix="CS",
        self_cancel_enabled="",
        self_cancel_instructions="Write to us.",
    )
    data = {key: value for key, value in data.items() if value not in (False, "")}

    response = creator_client.post("/admin/portal/sitesettings/1/change/", data)

    assert response.status_code == 302
    site = SiteSettings.objects.get(pk=1)
    assert (site.business_name, site.receipt_prefix, site.self_cancel_enabled) == ("Clay Studio", "CS", False)
    entry = AuditEntry.objects.get(action="site_settings.updated")
    assert entry.actor == creator
    assert entry.changes["business_name"][1] == "Clay Studio"
    assert entry.changes["self_cancel_enabled"] == ["True", "False"]


def test_the_site_settings_page_has_every_setting_the_creator_needs(creator_client):
    SiteSettings.objects.get_or_create(pk=1)

    form = creator_client.get("/admin/portal/sitesettings/1/change/").context["adminform"].form

    assert set(form.fields) >= {
        "business_name",
        "business_address",
        "business_tax_id",
        "logo",
        "receipt_prefix",
        "receipt_mode",
        "self_cancel_enabled",
        "self_cancel_instructions",
        "processor_attached",
    }


def test_a_customer_is_sent_to_sign_in_for_every_admin_page(client_logged_in, subject):
    response = client_logged_in.get("/admin/accounts/customer/")

    assert response.status_code == 302
    assert client_logged_in.get(response["Location"]).status_code == 403  # signed in, but not staff
    assert Customer.objects.count() >= 2
