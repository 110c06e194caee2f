from allauth.account.auth_backends import AuthenticationBackend
from django.core.exceptions import ValidationError

from .models import User


class PortalAuthenticationBackend(AuthenticationBackend):
    """allauth's backend, loading the customer record with the user in one query per request."""

    def get_user(self, user_id):
        try:
            user = User._default_manager.select_related("customer").get(pk=User._meta.pk.to_python(user_id))
        except (User.DoesNotExist, ValidationError):  # a session naming no valid id signs no one in
            return None
        return user if self.user_can_authenticate(user) else None
