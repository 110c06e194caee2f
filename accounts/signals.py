from django.dispatch import Signal

# Sent inside the saving transaction when a customer's contact details change.
# Arguments: customer, changed_fields (frozenset of Customer field names), by (the acting user).
contact_changed = Signal()

# The contact fields that receipts copy and that are pushed to the payment processor.
CONTACT_FIELDS = (
    "full_name",
    "email",
    "phone",
    "tax_id_type",
    "tax_id_value",
    "address_line1",
    "address_line2",
    "city",
    "region",
    "postal_code",
    "country",
)
