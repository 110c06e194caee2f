"""Writes to accounts. Views and admin call these; nothing else saves a Customer."""

import logging
import secrets
import uuid
from datetime import date
from decimal import Decimal, InvalidOperation

from allauth.account.forms import ResetPasswordForm
from allauth.account.models import EmailAddress
from allauth.account.stages import EmailVerificationStage, LoginStageController
from allauth.account.utils import perform_login
from allauth.usersessions.models import UserSession
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from portal.errors import UserFacingError
from portal.models import ActorKind, EmailKind
from portal.outbox import email_queue
from portal.services import audit_record

from .activity import customer_record_activity  # noqa: F401 - re-exported: the middleware, receivers and billing record activity through services
from .avatars import avatar_reencode
from .contact import CONTACT_FIELDS
from .hub import HubLinkUsed
from .models import SUPPORT_GROUP, SUPPORT_PERMISSIONS, Customer, CustomField, CustomFieldType, TaxIdStatus, User
from .preferences import EmailCategory
from .signals import contact_changed
from .social import SOCIAL_FIELDS

logger = logging.getLogger(__name__)

PROFILE_FIELDS = (
    "language",
    "time_zone",
    "notify_billing_notices",
    "notify_renewal_reminders",
    "notify_card_expiry_reminders",
)


def customer_get_or_create(*, user: User) -> Customer:
    """Return the user's contact record, creating it from the user's email when missing."""
    try:
        return user.customer
    except Customer.DoesNotExist:
        customer, _ = Customer.objects.get_or_create(user=user, defaults={"email": user.email})
        user.customer = customer
        return customer


def _same(old, new) -> bool:
    if type(old) is not type(new):
        return str(old or "") == str(new or "")
    return old == new


def _apply(customer: Customer, data: dict, allowed: tuple[str, ...]) -> dict[str, list]:
    """Set the allowed fields on the customer; return {field: [old, new]} for each that differs from the
    stored row. The stored row is the reference because a bound ModelForm has already copied the submitted
    values onto the instance it was given."""
    fields = [field for field in allowed if field in data]
    if not fields:
        return {}
    stored = Customer.objects.filter(pk=customer.pk).values(*fields).first() or {}
    changed = {}
    for field in fields:
        old, new = stored.get(field), data[field]
        if not _same(old, new):
            changed[field] = [str(old or ""), str(new or "")]
        setattr(customer, field, new)
    return changed


def _with_activity(customer: Customer, update_fields: list[str]) -> list[str]:
    """The customer's own change is activity (accounts.activity): write it in the same UPDATE."""
    customer.last_activity_at = timezone.now()
    return [*update_fields, "last_activity_at"]


@transaction.atomic
def customer_update_contact(*, customer: Customer, data: dict, by: User | None) -> frozenset[str]:
    """Save contact fields; send `contact_changed` with exactly the fields that changed."""
    changed = _apply(customer, data, CONTACT_FIELDS)
    if not changed:
        return frozenset()
    update_fields = [*changed, "updated_at"]
    if {"tax_id_type", "tax_id_value"} & changed.keys():
        customer.tax_id_status = TaxIdStatus.FORMAT_VALID if customer.tax_id_value else TaxIdStatus.NONE
        update_fields.append("tax_id_status")
    if by is not None and by.pk == customer.user_id:  # staff edits are not the customer's activity
        update_fields = _with_activity(customer, update_fields)
    customer.save(update_fields=update_fields)
    changed_fields = frozenset(changed)
    logger.info("customer %s contact changed: %s", customer.pk, ",".join(sorted(changed_fields)))
    audit_record(action="contact.updated", customer=customer, actor=by, changes=changed)
    contact_changed.send(sender=Customer, customer=customer, changed_fields=changed_fields, by=by)
    return changed_fields


def customer_update_profile(*, customer: Customer, data: dict) -> dict[str, list]:
    changed = _apply(customer, data, PROFILE_FIELDS)
    if changed:
        customer.save(update_fields=_with_activity(customer, [*changed, "updated_at"]))
    return changed


def customer_update_social(*, customer: Customer, data: dict) -> dict[str, list]:
    changed = _apply(customer, data, SOCIAL_FIELDS)
    if changed:
        customer.save(update_fields=_with_activity(customer, [*changed, "updated_at"]))
    return changed


def customer_set_avatar(*, customer: Customer, upload) -> Customer:
    """Re-encode the upload and make it the avatar; raises AvatarError for a bad image."""
    content = avatar_reencode(upload)
    old = customer.avatar.name
    customer.avatar.save(content.name, content, save=False)
    customer.save(update_fields=_with_activity(customer, ["avatar", "updated_at"]))
    if old:
        transaction.on_commit(lambda: customer.avatar.storage.delete(old))
    return customer


def customer_remove_avatar(*, customer: Customer) -> Customer:
    old = customer.avatar.name
    if old:
        customer.avatar = ""
        customer.save(update_fields=_with_activity(customer, ["avatar", "updated_at"]))
        transaction.on_commit(lambda: customer.avatar.storage.delete(old))
    return customer


def customer_sync_email(*, user: User) -> frozenset[str]:
    """Mirror the user's verified primary address onto the contact record."""
    customer = customer_get_or_create(user=user)
    return customer_update_contact(customer=customer, data={"email": user.email}, by=user)


@transaction.atomic
def customer_unsubscribe(*, customer: Customer, category: EmailCategory) -> bool:
    """Turn an email category off (one-click unsubscribe); return whether it was on."""
    updated = Customer.objects.filter(pk=customer.pk, **{category.field: True}).update(
        **{category.field: False}, updated_at=timezone.now()
    )
    setattr(customer, category.field, False)
    if updated:
        audit_record(
            action="notifications.unsubscribed",
            customer=customer,
            actor_kind=ActorKind.CUSTOMER,
            changes={category.field: ["True", "False"]},
        )
    return bool(updated)


# --- hub links -------------------------------------------------------------------------------


def hub_link_request(*, email: str) -> None:
    """Email a fresh hub link to the active customer whose verified primary address this is; for any other
    address (unknown, never verified, a staff member's) do nothing.

    Anyone can ask: an address nobody has proven, or a staff account (the link would skip the password and
    the second factor into the admin), must not be handed a credential this way."""
    customer = (
        Customer.objects.filter(
            user__email__iexact=email.strip(),
            user__is_active=True,
            user__is_staff=False,
            user__is_superuser=False,
            user__emailaddress__email__iexact=email.strip(),
            user__emailaddress__verified=True,
        )
        .select_related("user")
        .first()
    )
    if customer is not None:
        email_queue(customer=customer, kind=EmailKind.HUB_LINK, key=f"hub_link:{customer.pk}:{uuid.uuid4().hex}")


def hub_link_nonce_rotate(*, customer: Customer, expected: str | None = None) -> bool:
    """Give the customer a new hub link nonce, so every link made so far stops working.

    With `expected`, only when the nonce is still that one: of two requests using the same link, one wins."""
    nonce = secrets.token_hex(16)
    rows = Customer.objects.filter(pk=customer.pk)
    if expected is not None:
        rows = rows.filter(hub_link_nonce=expected)
    if not rows.update(hub_link_nonce=nonce):
        return False
    customer.hub_link_nonce = nonce
    return True


def email_address_mark_verified(*, request: HttpRequest | None, user: User) -> bool:
    """Record the user's address as verified: a link mailed to it was opened (and the token names it).

    Return whether a password was removed because this was the account's first proven address
    (address_first_proven)."""
    first = not _has_verified_address(user)
    address = EmailAddress.objects.filter(user=user, email__iexact=user.email).first()
    if address is None:
        has_primary = EmailAddress.objects.filter(user=user, primary=True).exists()
        EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=not has_primary)
    elif not address.verified:
        address.verified = True
        address.save(update_fields=["verified"])
    return address_first_proven(request=request, user=user) if first else False


@transaction.atomic
def hub_sign_in(*, request: HttpRequest, customer: Customer, redirect_url: str) -> HttpResponse:
    """Sign the customer in from a checked hub link, through allauth's login stages (2FA included).

    The link is used up first (its nonce replaced); raises HubLinkUsed when another request used it first."""
    if not hub_link_nonce_rotate(customer=customer, expected=customer.hub_link_nonce):
        raise HubLinkUsed()
    if email_address_mark_verified(request=request, user=customer.user):
        messages.info(request, ADDRESS_PROVEN_SET_PASSWORD, fail_silently=True)
    return perform_login(request, customer.user, redirect_url=redirect_url, email=customer.user.email)


# --- Proving an address; accounts whose address nobody proved --------------------------------------

# Set at sign-up: this browser session chose the account's password (accounts.adapter).
SIGNED_UP_SESSION_KEY = "portal_signed_up_user"

ADDRESS_PROVEN_SET_PASSWORD = _(
    "Your email address is confirmed. For your safety any password set on this account before was removed "
    "and every other session signed out: set a password of your own in Settings › Password."
)


def _has_verified_address(user: User) -> bool:
    return EmailAddress.objects.filter(user=user, verified=True).exists()


def _password_chosen_in_this_session(request: HttpRequest | None, user: User) -> bool:
    """Whether the browser proving the address is the one that chose the password: it signed up, or signed in
    with the password and is waiting at allauth's "verify your email" stage."""
    session = getattr(request, "session", None)
    if session is None:
        return False
    if session.get(SIGNED_UP_SESSION_KEY) == user.pk:
        return True
    stage = LoginStageController.enter(request, EmailVerificationStage.key)
    return bool(stage and stage.login.user and stage.login.user.pk == user.pk)


def _sessions_end(*, user: User, keep_session_key: str | None = None) -> int:
    """End the user's tracked sessions (allauth's user sessions), but the one named; return how many."""
    ended = 0
    for session in UserSession.objects.filter(user=user).exclude(session_key=keep_session_key or ""):
        session.end()
        ended += 1
    return ended


@transaction.atomic
def address_first_proven(*, request: HttpRequest | None, user: User) -> bool:
    """The account's first verified address was just proven (hub link, sign-in code or verification link).

    Until now anyone could have signed up with this address and chosen the password, so unless this very
    browser session chose it, the password goes (the owner sets one afterwards), every other session ends
    (a changed password ends the untracked ones too) and every hub link stops working. Return whether the
    password was removed. Staff accounts are made by trusted hands (createsuperuser, the admin), not on the
    sign-up page: they keep theirs."""
    clear = (
        user.has_usable_password()
        and not (user.is_staff or user.is_superuser)
        and not _password_chosen_in_this_session(request, user)
    )
    if clear:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    current = getattr(getattr(request, "session", None), "session_key", None)
    ended = _sessions_end(user=user, keep_session_key=current)
    customer = customer_get_or_create(user=user)
    hub_link_nonce_rotate(customer=customer)
    audit_record(
        action="account.address_proven",
        customer=customer,
        actor_kind=ActorKind.SYSTEM,
        changes={"password_removed": clear, "sessions_ended": ended},
    )
    return clear


@transaction.atomic
def account_unproven_reset(*, user: User) -> None:
    """Take every credential off an account whose address nobody has proven: its password, its sessions and
    its hub links. Before anything of value (a processor customer, purchases) is tied to such an account."""
    user.set_unusable_password()
    user.save(update_fields=["password"])
    ended = _sessions_end(user=user)
    customer = customer_get_or_create(user=user)
    hub_link_nonce_rotate(customer=customer)
    audit_record(
        action="account.unproven_reset",
        customer=customer,
        actor_kind=ActorKind.SYSTEM,
        changes={"sessions_ended": ended},
    )


def user_for_processor_email(*, email: str) -> User | None:
    """The user a payment processor's customer with this address belongs to, if any.

    The processor does not prove addresses. An account here whose address nobody proved is no one's yet:
    it is reset (account_unproven_reset) before the caller links purchases to it, so only whoever proves
    the address, from the receipt's link, gets in. Staff accounts (a creator made with createsuperuser has
    no address record at all) are never reset: anyone can pay with anyone's address."""
    user = User.objects.filter(email__iexact=email).first() if email else None
    if user is not None and not (user.is_staff or user.is_superuser) and not _has_verified_address(user):
        account_unproven_reset(user=user)
    return user


# --- Contacts added and edited by staff ----------------------------------------------------------

EMAIL_TAKEN = _("A customer with the email address %(email)s already exists.")
VIEW_AS_STAFF_ACCOUNT = _("Staff accounts cannot be viewed as a customer.")
VIEW_AS_INACTIVE = _("This customer's account is deactivated, so there is nothing to view.")

# Customer fields staff may change besides the contact fields (those go through customer_update_contact).
STAFF_EDITABLE_FIELDS = ("external_user_id", *PROFILE_FIELDS, *SOCIAL_FIELDS)

VIEW_AS_SESSION_KEY = "portal_view_as_customer"


class CustomerError(UserFacingError):
    """A staff action on a contact was refused; the message may be shown to staff."""


@transaction.atomic
def customer_update_details(*, customer: Customer, data: dict, by: User | None) -> frozenset[str]:
    """Save any staff-editable fields: contact fields through customer_update_contact, the rest audited here."""
    changed_contact = customer_update_contact(customer=customer, data=data, by=by)
    changed = _apply(customer, data, STAFF_EDITABLE_FIELDS)
    if changed:
        customer.save(update_fields=[*changed, "updated_at"])
        audit_record(action="customer.updated", customer=customer, actor=by, changes=changed)
    return changed_contact | frozenset(changed)


@transaction.atomic
def customer_create(*, email: str, by: User | None, contact: dict | None = None) -> Customer:
    """Create a customer (and their user, with no password yet) from an email address and contact details."""
    email = User.objects.normalize_email(email).strip().lower()
    if User.objects.filter(email__iexact=email).exists():
        raise CustomerError(EMAIL_TAKEN, {"email": email})
    user = User.objects.create_user(email=email, password=None)
    # The address is confirmed when the customer first signs in through a link sent to it.
    EmailAddress.objects.create(user=user, email=email, primary=True, verified=False)
    customer = Customer.objects.create(user=user, email=email)
    user.customer = customer
    audit_record(action="customer.created", customer=customer, actor=by, changes={"email": email})
    if contact:
        customer_update_contact(customer=customer, data={**contact, "email": email}, by=by)
    return customer


SIGN_IN_EMAIL_STAFF_REFUSED = _(
    "%(email)s is a staff account: sign-in and password emails are not sent to staff from here. Staff sign in "
    "with their password and two-factor code."
)


def sign_in_email_refuse_staff(*, customer: Customer) -> None:
    """Raise CustomerError when the customer is staff: emails that sign in or reset a password are for customers.

    Support could otherwise send one to the creator, whose account opens the whole admin."""
    if customer.user.is_staff or customer.user.is_superuser:
        raise CustomerError(SIGN_IN_EMAIL_STAFF_REFUSED, {"email": customer.user.email})


def customer_send_login_email(*, customer: Customer, by: User) -> None:
    """Queue the welcome email, whose link lets the customer sign in and set a password (never to staff)."""
    sign_in_email_refuse_staff(customer=customer)
    key = f"welcome:{customer.pk}:{uuid.uuid4().hex}"  # each send is a new email, never deduplicated
    email_queue(customer=customer, kind=EmailKind.WELCOME, key=key)
    audit_record(action="login_email.sent", customer=customer, actor=by)


def customer_send_password_reset(*, customer: Customer, by: User, request) -> None:
    """Send allauth's own password-reset email to the customer's address (never to staff)."""
    sign_in_email_refuse_staff(customer=customer)
    form = ResetPasswordForm(data={"email": customer.user.email})
    if form.is_valid():
        form.save(request)
        audit_record(action="password_reset.sent", customer=customer, actor=by)


def support_group_ensure():
    """The Support group as the migrations made it, made again from the role's current list of
    permissions when it is missing (a database flushed by tests, or deleted by hand).

    Not the migrations' functions: given the live app registry, they would leave every app without its
    models module, and later flushes would then recreate no content types or permissions.
    """
    from django.contrib.auth.models import Group, Permission

    group, created = Group.objects.get_or_create(name=SUPPORT_GROUP)
    if created:
        group.permissions.set(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
            for app_label, codename in (name.split(".") for name in SUPPORT_PERMISSIONS)
        )
    return group


# --- Custom fields -----------------------------------------------------------------------------

CUSTOM_NUMBER_INVALID = _("Enter a number, such as 42 or 3.5.")
CUSTOM_DATE_INVALID = _("Enter a date as YYYY-MM-DD.")
CUSTOM_CHOICE_INVALID = _("Choose one of: %(choices)s.")
CUSTOM_TEXT_TOO_LONG = _("Enter at most %(max)s characters.")
CUSTOM_FIELD_UNKNOWN = _("There is no custom field with the key %(key)s.")
CUSTOM_TEXT_MAX_LENGTH = 500


def custom_field_value_clean(*, field: CustomField, value) -> str:
    """Return the value in its stored form: text, a plain decimal, an ISO date, or one of the choices ('' is empty).

    Raises ValidationError with the message for the field's type."""
    if value is None:
        return ""
    if field.type == CustomFieldType.DATE and isinstance(value, date):
        return value.isoformat()
    text = str(value).strip()
    if not text:
        return ""
    if field.type == CustomFieldType.NUMBER:
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise ValidationError(CUSTOM_NUMBER_INVALID, code="invalid_number") from None
        if not number.is_finite():
            raise ValidationError(CUSTOM_NUMBER_INVALID, code="invalid_number")
        return format(number.normalize(), "f")
    if field.type == CustomFieldType.DATE:
        try:
            return date.fromisoformat(text).isoformat()
        except ValueError:
            raise ValidationError(CUSTOM_DATE_INVALID, code="invalid_date") from None
    if field.type == CustomFieldType.CHOICE:
        if text not in field.choice_list:
            raise ValidationError(
                CUSTOM_CHOICE_INVALID, code="invalid_choice", params={"choices": ", ".join(field.choice_list)}
            )
        return text
    if len(text) > CUSTOM_TEXT_MAX_LENGTH:
        raise ValidationError(CUSTOM_TEXT_TOO_LONG, code="max_length", params={"max": CUSTOM_TEXT_MAX_LENGTH})
    return text


@transaction.atomic
def customer_set_custom_fields(*, customer: Customer, values: dict, by: User | None) -> dict[str, list]:
    """Validate and store custom field values by key ('' clears one); return {key: [old, new]} of the changes.

    Raises ValidationError({key: [message]}) naming every invalid value; nothing is stored then."""
    if not values:
        return {}
    fields = {field.key: field for field in CustomField.objects.filter(key__in=values)}
    cleaned, errors = {}, {}
    for key, value in values.items():
        if key not in fields:
            errors[key] = [ValidationError(CUSTOM_FIELD_UNKNOWN, code="unknown", params={"key": key})]
            continue
        try:
            cleaned[key] = custom_field_value_clean(field=fields[key], value=value)
        except ValidationError as error:
            errors[key] = error.error_list
    if errors:
        raise ValidationError(errors)
    # The stored row is the reference, as in _apply(): the instance may hold unsaved values.
    stored = Customer.objects.select_for_update().filter(pk=customer.pk).values_list("custom_field_values", flat=True)
    current = dict(stored.first() or {})
    changed = {key: [current.get(key, ""), new] for key, new in cleaned.items() if current.get(key, "") != new}
    if not changed:
        customer.custom_field_values = current
        return {}
    for key, (_old, new) in changed.items():
        if new:
            current[key] = new
        else:
            current.pop(key, None)
    customer.custom_field_values = current
    customer.save(update_fields=["custom_field_values", "updated_at"])
    audit_record(action="custom_fields.updated", customer=customer, actor=by, changes=changed)
    return changed


# --- Viewing the portal as a customer --------------------------------------------------------------


def view_as_start(*, session, staff: User, customer: Customer) -> None:
    """Let the staff member see the portal as the customer does (read-only), recording the start."""
    if customer.user.is_staff:
        raise CustomerError(VIEW_AS_STAFF_ACCOUNT)
    if not customer.user.is_active:
        raise CustomerError(VIEW_AS_INACTIVE)
    session[VIEW_AS_SESSION_KEY] = customer.pk
    audit_record(action="view_as.started", customer=customer, actor=staff)


def view_as_end(*, session, staff: User) -> Customer | None:
    """Stop viewing as a customer, recording the end; return the customer who was viewed."""
    customer_id = session.pop(VIEW_AS_SESSION_KEY, None)
    customer = Customer.objects.filter(pk=customer_id).first() if customer_id else None
    if customer is not None:
        audit_record(action="view_as.ended", customer=customer, actor=staff)
    return customer
