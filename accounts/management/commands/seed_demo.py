import secrets

from allauth.account.models import EmailAddress
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.models import User
from accounts.services import customer_get_or_create, customer_update_contact, customer_update_social

DEMO_USERS = {
    "creator": "creator@example.com",
    "support": "support@example.com",
    "customer": "customer@example.com",
}

DEMO_CONTACT = {
    "full_name": "Dana Demo",
    "email": "customer@example.com",
    "phone": "+44 20 7946 0958",
    "address_line1": "1 Demo Street",
    "address_line2": "",
    "city": "London",
    "region": "",
    "postal_code": "EC1A 1BB",
    "country": "GB",
    "tax_id_type": "gb_vat",
    "tax_id_value": "GB980780684",
}


class Command(BaseCommand):
    help = "Create (or reset) the demo creator, support user and customer, all with one password."

    def add_arguments(self, parser):
        parser.add_argument("--password", help="password for all demo users (generated when left out)")

    def handle(self, *args, password=None, **options):
        password = password or secrets.token_urlsafe(12)
        if len(password) < 4:
            raise CommandError("The demo password must have at least 4 characters.")
        with transaction.atomic():
            users = {role: self._user(email, password, staff=role != "customer", superuser=role == "creator")
                     for role, email in DEMO_USERS.items()}
            customer = customer_get_or_create(user=users["customer"])
            customer_update_contact(customer=customer, data=DEMO_CONTACT, by=None)
            customer_update_social(customer=customer, data={
                "bio": "Lifelong learner. Building things with clay and code.",
                "location": "London",
                "x_username": "danademo",
                "website_url": "https://example.com/",
                "directory_opt_in": True,
            })
        for role, email in DEMO_USERS.items():
            self.stdout.write(f"  {role:<9} {email}")
        self.stdout.write(self.style.SUCCESS(f"Demo users ready; password: {password}"))

    def _user(self, email, password, *, staff, superuser):
        user, _ = User.objects.get_or_create(email=email)
        user.is_staff = staff
        user.is_superuser = superuser
        user.is_active = True
        user.set_password(password)
        user.save()
        EmailAddress.objects.update_or_create(
            user=user, email=email, defaults={"verified": True, "primary": True}
        )
        customer_get_or_create(user=user)
        return user
