"""The contact record's fields, declared once; forms, services, receipts and the payment processor read them here."""

# Every contact field of `Customer`, in the order the contact page shows them. A change of any of them
# is audited and sends `accounts.signals.contact_changed`.
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

# The contact page edits all but the email address, which changes through allauth once the new one is verified.
CONTACT_FORM_FIELDS = tuple(field for field in CONTACT_FIELDS if field != "email")

# What a bill names: receipts copy these and the payment processor's customer record holds them (no phone).
BILLING_FIELDS = tuple(field for field in CONTACT_FIELDS if field != "phone")
