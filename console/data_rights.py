"""A customer's data rights: a copy of their data (JSON plus their receipts' PDFs), and erasure.

Erasure anonymises rather than deletes: receipts are tax records the business must keep, so Receipt
rows keep their billing snapshot (and purchases and refunds stay), while the contact record, the login,
the avatar, sessions, addresses and the audit details that could name the person go, and the processor's
customer is deleted (which ends its subscriptions and forgets its cards there too).

These sit above accounts, purchases and billing (they read and write all three), like the emails."""

import json
from collections.abc import Iterator
from datetime import datetime

from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from allauth.usersessions.models import UserSession
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.contact import CONTACT_FIELDS
from accounts.models import Customer, CustomField
from accounts.services import PROFILE_FIELDS as ACCOUNT_PROFILE_FIELDS
from accounts.services import hub_link_nonce_rotate
from accounts.social import SOCIAL_FIELDS
from billing.gateways.base import get_gateway
from billing.models import Card, Subscription
from billing.services import customer_processor_deleted
from portal.errors import UserFacingError
from portal.models import AuditEntry, OutboundEmail
from portal.selectors import site_settings_get
from portal.services import audit_record
from purchases.models import Purchase, Receipt
from purchases.receipts import receipts_zip_stream

STAFF_NOT_ERASED = _("Staff accounts are not erased here: take away their staff status first.")
ALREADY_ERASED = _("This account was erased already.")

# The fields each part of the export holds and erasure empties, from where the account app declares them.
PREFERENCE_FIELDS = tuple(name for name in ACCOUNT_PROFILE_FIELDS if name.startswith("notify_"))
PROFILE_FIELDS = (*SOCIAL_FIELDS, *(name for name in ACCOUNT_PROFILE_FIELDS if name not in PREFERENCE_FIELDS))
# Receipts keep their own copy of the billing ones.
ERASED_FIELDS = (
    *CONTACT_FIELDS,
    "tax_id_status",
    *(name for name in SOCIAL_FIELDS if name != "directory_opt_in"),
    "external_user_id",
)


class DataRightsError(UserFacingError):
    """An export or erasure was refused; the message may be shown to the customer or staff."""


def erased_email(user_pk: int) -> str:
    """The login an erased account keeps: unique, on a reserved domain (RFC 2606), names no one."""
    return f"erased-{user_pk}@erased.invalid"


def is_erased(customer: Customer) -> bool:
    return customer.user.email == erased_email(customer.user_id)


# --- the copy -------------------------------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def customer_data(*, customer: Customer) -> dict:
    """Everything the portal holds about the customer, as plain JSON data."""
    fields = {field.key: field.label for field in CustomField.objects.all()}
    purchases = (
        Purchase.objects.filter(customer=customer).select_related("offer").prefetch_related("receipts", "refunds")
    )
    return {
        "exported_at": timezone.now().isoformat(),
        "account": {"login_email": customer.user.email, "joined": _iso(customer.user.date_joined)},
        "contact": {name: str(getattr(customer, name) or "") for name in CONTACT_FIELDS},
        "profile": {
            **{name: getattr(customer, name) for name in PROFILE_FIELDS},
            "avatar": customer.avatar.name or None,
        },
        "preferences": {name: getattr(customer, name) for name in PREFERENCE_FIELDS},
        "custom_fields": {fields.get(key, key): value for key, value in customer.custom_field_values.items()},
        "purchases": [
            {
                "offer": purchase.offer.name,
                "purchased_at": _iso(purchase.purchased_at),
                "amount": purchase.amount,
                "amount_refunded": purchase.amount_refunded,
                "currency": purchase.currency,
                "status": purchase.status,
                "paid_with": purchase.payment_method_display,
                "receipts": [receipt.number for receipt in purchase.receipts.all()],
                "refunds": [
                    {"amount": refund.amount, "status": refund.status, "at": _iso(refund.created_at)}
                    for refund in purchase.refunds.all()
                ],
            }
            for purchase in purchases
        ],
        "receipts": list(
            Receipt.objects.filter(customer=customer).order_by("issued_at", "pk").values_list("number", flat=True)
        ),
        "subscriptions": [
            {
                "offer": subscription.offer.name if subscription.offer else "",
                "status": subscription.status,
                "amount": subscription.amount,
                "currency": subscription.currency,
                "current_period_end": _iso(subscription.current_period_end),
            }
            for subscription in Subscription.objects.filter(customer=customer).select_related("offer")
        ],
        "cards": [
            {"brand": card.brand, "last4": card.last4, "expires": f"{card.exp_month:02d}/{card.exp_year}"}
            for card in Card.objects.filter(customer=customer)
        ],
        "activity": [
            {"at": _iso(entry.created_at), "action": entry.action, "changes": entry.changes}
            for entry in AuditEntry.objects.filter(customer=customer, actor=customer.user).order_by("created_at", "pk")
        ],
    }


def customer_data_export(*, customer: Customer, by) -> Iterator[bytes]:
    """Record the export, then return the ZIP's bytes as they are made: `data.json` and `receipts/…pdf`."""
    audit_record(action="account.data_exported", customer=customer, actor=by)
    data = json.dumps(customer_data(customer=customer), cls=DjangoJSONEncoder, ensure_ascii=False, indent=2)
    receipts = (
        Receipt.objects.filter(customer=customer).select_related("purchase", "corrects").order_by("issued_at", "pk")
    )
    return receipts_zip_stream(
        receipts=receipts.iterator(chunk_size=50),
        site=site_settings_get(),
        folder="receipts/",
        first_files=[("data.json", data.encode())],
    )


# --- erasure --------------------------------------------------------------------------------------


def customer_erase(*, customer: Customer, by) -> Customer:
    """Erase the customer's personal data, keeping the receipts tax law requires (see the module's doc).

    The processor's customer is deleted first: if the processor refuses, nothing here has changed and the
    PaymentError goes to the caller. Deleting it again later finds it gone, which is fine."""
    customer = Customer.objects.select_related("user").get(pk=customer.pk)
    if customer.user.is_staff or customer.user.is_superuser:
        raise DataRightsError(STAFF_NOT_ERASED)
    if is_erased(customer):
        raise DataRightsError(ALREADY_ERASED)
    stripe_customer_id = customer.stripe_customer_id
    if stripe_customer_id:
        get_gateway().customer_delete(customer_id=stripe_customer_id)
        customer_processor_deleted(stripe_customer_id=stripe_customer_id)
    with transaction.atomic():
        customer = Customer.objects.select_for_update().select_related("user").get(pk=customer.pk)
        user = customer.user
        avatar = customer.avatar.name
        for name in ERASED_FIELDS:
            setattr(customer, name, customer._meta.get_field(name).get_default())
        customer.avatar = ""
        customer.custom_field_values = {}
        customer.directory_opt_in = False
        for name in PREFERENCE_FIELDS:
            setattr(customer, name, False)
        customer.save()
        hub_link_nonce_rotate(customer=customer)
        ended = 0
        for session in UserSession.objects.filter(user=user):
            session.end()
            ended += 1
        EmailAddress.objects.filter(user=user).delete()
        Authenticator.objects.filter(user=user).delete()
        user.email = erased_email(user.pk)
        user.is_active = False
        user.set_unusable_password()
        user.save()
        # What was said about the person (old addresses in contact changes, where emails went) goes; that
        # something happened, and when, stays.
        AuditEntry.objects.filter(customer=customer).update(changes={})
        OutboundEmail.objects.filter(customer=customer).update(to="", subject="", context={})
        audit_record(
            action="account.erased",
            customer=customer,
            actor=by if by is not None and by.pk != user.pk else None,
            actor_kind="customer" if by is not None and by.pk == user.pk else None,
            changes={"processor_customer_deleted": bool(stripe_customer_id), "sessions_ended": ended},
        )
        if avatar:
            storage = customer.avatar.storage
            transaction.on_commit(lambda: storage.delete(avatar))
    return customer
