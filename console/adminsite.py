"""The admin site of the creator and support staff: sign-in through allauth, optional required
two-factor, the business's name in the header, and a dashboard on the index page."""

from functools import wraps

from allauth.mfa.utils import is_mfa_enabled
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.functional import SimpleLazyObject
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext_lazy as _

from portal.selectors import site_settings_for_request

from .selectors import dashboard_metrics

STAFF_TWO_FACTOR_REQUIRED = _(
    "Staff must use two-factor authentication: set up an authenticator app to open the admin."
)


def _site_header(request) -> str:
    return str(_("%(business)s · console") % {"business": site_settings_for_request(request).business_name})


class PortalAdminSite(admin.AdminSite):
    site_title = _("Console")
    index_title = _("Dashboard")
    index_template = "admin/portal/index.html"

    def each_context(self, request):
        context = super().each_context(request)
        context["site_header"] = SimpleLazyObject(lambda: _site_header(request))  # read only if the page shows it
        context["viewing_as"] = getattr(request, "viewing_as", None)
        return context

    def login(self, request, extra_context=None):
        """Staff sign in through allauth like customers do: the same rate limits and two-factor step."""
        next_url = request.GET.get("next", "")
        if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
            next_url = ""
        next_url = next_url or reverse("admin:index", current_app=self.name)
        if not request.user.is_authenticated:
            return redirect_to_login(next_url, settings.LOGIN_URL)
        if not (request.user.is_active and request.user.is_staff):
            raise PermissionDenied
        return redirect(next_url)

    def password_change(self, request, extra_context=None):
        """The portal's own password page: allauth asks for the current password and tells the owner."""
        return redirect("accounts:password")

    def admin_view(self, view, cacheable=False):
        checked = super().admin_view(view, cacheable)

        @wraps(view)
        def two_factor_first(request, *args, **kwargs):
            user = request.user
            if (
                settings.PORTAL_STAFF_REQUIRE_2FA
                and user.is_authenticated
                and user.is_staff
                and not is_mfa_enabled(user)
            ):
                messages.warning(request, STAFF_TWO_FACTOR_REQUIRED)
                return redirect("mfa_activate_totp")
            return checked(request, *args, **kwargs)

        return two_factor_first

    def index(self, request, extra_context=None):
        extra_context = dict(extra_context or {})
        if request.user.has_perm("billing.view_subscription"):
            extra_context["dashboard"] = dashboard_metrics()
        return super().index(request, extra_context)
