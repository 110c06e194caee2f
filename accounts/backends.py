from allauth.account.auth_backends import AuthenticationBackend
from django.core.exceptions import ValidationError

from portal.compiled import CompiledQuery

from .models import User

# Every signed-in request loads its user; the SQL of this join is made once (portal/compiled.py).
_user_with_customer = CompiledQuery(
    lambda user_id: User._default_manager.select_related("customer").filter(pk=user_id), user_id=int
)


class PortalAuthenticationBackend(AuthenticationBackend):
    """allauth's backend, loading the customer record with the user in one query per request."""

    def get_user(self, user_id):
        try:
            user_id = User._meta.pk.to_python(user_id)
        except ValidationError:  # a session naming no valid id signs no one in
            return None
        users = _user_with_customer(user_id=user_id)
        if not users:
            return None
        return users[0] if self.user_can_authenticate(users[0]) else None
