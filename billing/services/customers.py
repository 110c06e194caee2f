"""The processor's customer: what it should say, created on first need, pushed on a contact change, and
the customer of a processor id."""

from django.db import transaction

from accounts.models import Customer, User
from portal.models import ActorKind
from portal.services import audit_record

from ..gateways.base import (
    Address,
    CustomerDetails,
    get_gateway,
)
from .common import BillingError, _digest

# ---------------------------------------------------------------------------------------------
# The processor's customer
# ---------------------------------------------------------------------------------------------


def customer_details(customer: Customer) -> CustomerDetails:
    """What the processor's customer record should say (tax IDs are stored in Stripe's form)."""
    return CustomerDetails(
        name=customer.full_name,
        email=customer.email or customer.user.email,
        address=Address(
            line1=customer.address_line1,
            line2=customer.address_line2,
            city=customer.city,
            region=customer.region,
            postal_code=customer.postal_code,
            country=str(customer.country or ""),
        ),
        tax_id_type=customer.tax_id_type if customer.tax_id_value else "",
        tax_id_value=customer.tax_id_value,
    )


def stripe_customer_ensure(*, customer: Customer) -> str:
    """Return the customer's processor id, creating the processor customer on first need."""
    if customer.stripe_customer_id:
        return customer.stripe_customer_id
    with transaction.atomic():
        locked = Customer.objects.select_for_update().get(pk=customer.pk)
        if not locked.stripe_customer_id:
            details = customer_details(locked)
            created = get_gateway().customer_create(
                details=details, idempotency_key=f"portal:customer-create:{locked.pk}:{_digest(details)}"
            )
            locked.stripe_customer_id = created.id
            locked.save(update_fields=["stripe_customer_id"])
            audit_record(action="stripe.customer_created", customer=locked, changes={"stripe_customer_id": created.id})
    customer.stripe_customer_id = locked.stripe_customer_id
    return customer.stripe_customer_id


def stripe_customer_push(*, customer_id: int, idempotency_key: str) -> bool:
    """Send the customer's current contact details to the processor; False when there is nothing to push.

    The details are read at each attempt, so the key also names them: a retry of the same details
    replays, and details changed in between are a new request rather than an idempotency error.
    """
    customer = Customer.objects.select_related("user").filter(pk=customer_id).first()
    if customer is None or not customer.stripe_customer_id:
        return False  # no processor customer yet: it is created with current details when first needed
    details = customer_details(customer)
    get_gateway().customer_update(
        customer_id=customer.stripe_customer_id,
        details=details,
        idempotency_key=f"{idempotency_key}:{_digest(details)}",
    )
    return True


def customer_for_stripe_id(*, stripe_customer_id: str) -> Customer:
    """The portal customer behind a processor customer, linking or creating one by email if needed.

    People who buy through a Stripe checkout exist at Stripe before they ever sign in here.
    """
    customer = Customer.objects.select_related("user").filter(stripe_customer_id=stripe_customer_id).first()
    if customer:
        return customer
    remote = get_gateway().customer_retrieve(customer_id=stripe_customer_id)
    from accounts.services import customer_get_or_create, user_for_processor_email

    user = user_for_processor_email(email=remote.email)  # an account nobody verified loses its credentials first
    if user is None:
        if not remote.email:
            raise BillingError(f"Stripe customer {stripe_customer_id} has no email address")
        user = User.objects.create_user(email=remote.email, password=None)
    customer = customer_get_or_create(user=user)
    if customer.stripe_customer_id and customer.stripe_customer_id != stripe_customer_id:
        raise BillingError(
            f"{remote.email} is linked to Stripe customer {customer.stripe_customer_id}, not {stripe_customer_id}"
        )
    updates = {"stripe_customer_id": stripe_customer_id}
    if remote.name and not customer.full_name:
        updates["full_name"] = remote.name
    Customer.objects.filter(pk=customer.pk).update(**updates)
    for field, value in updates.items():
        setattr(customer, field, value)
    audit_record(action="stripe.customer_linked", customer=customer, actor_kind=ActorKind.STRIPE, changes=updates)
    return customer
