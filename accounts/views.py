from allauth.account.views import PasswordChangeView, PasswordSetView
from allauth.core import ratelimit
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils import translation
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from . import selectors, services
from .avatars import UPLOAD_RATE_LIMITED, AvatarError
from .forms import AvatarForm, ContactForm, HubLinkRequestForm, ProfileForm, SocialForm, with_custom_fields
from .hub import HubLinkError, hub_default_destination, hub_link_token
from .preferences import UnsubscribeLinkInvalid, unsubscribe_token_check

HUB_LINK_RATE_LIMITED = gettext_lazy("Too many requests for a link. Wait a few minutes, then try again.")


def _customer(request):
    return services.customer_get_or_create(user=request.user)


@login_required
def contact(request):
    customer = _customer(request)
    custom_fields = selectors.custom_fields_for_contact_page()
    form_class = with_custom_fields(ContactForm, [field for field in custom_fields if field.editable_by_customer])
    form = form_class(request.POST or None, instance=customer)
    if request.method == "POST" and form.is_valid():
        changed = services.customer_update_contact(customer=customer, data=form.cleaned_data, by=request.user)
        custom_changed = services.customer_set_custom_fields(
            customer=customer, values=form.custom_field_values(), by=request.user
        )
        messages.success(
            request, _("Your contact information was saved.") if changed or custom_changed else _("Nothing changed.")
        )
        if request.htmx:
            return HttpResponseClientRedirect(
                request.POST.get("next_page") == "home" and reverse("portal:home") or reverse("accounts:contact")
            )
        return redirect("accounts:contact")
    if request.htmx:
        return render(request, "accounts/partials/contact_form.html", {"form": form, "in_dialog": True})
    read_only_fields = [field for field in custom_fields if not field.editable_by_customer]
    return render(
        request,
        "accounts/contact.html",
        {"form": form, "customer": customer, "custom_details": _custom_details(customer, read_only_fields)},
    )


def _custom_details(customer, fields) -> list[tuple[str, str]]:
    """(label, value) of the custom fields shown to the customer but not editable by them."""
    values = customer.custom_field_values or {}
    return [(field.label, values[field.key]) for field in fields if values.get(field.key)]


@login_required
def profile(request):
    customer = _customer(request)
    form = ProfileForm(request.POST or None, instance=customer)
    if request.method == "POST" and form.is_valid():
        changed = services.customer_update_profile(customer=customer, data=form.cleaned_data)
        if "language" in changed:  # say "saved" in the language just chosen
            translation.activate(customer.language or translation.get_language_from_request(request))
        messages.success(request, _("Your profile was saved."))
        return redirect("accounts:profile")
    return render(request, "accounts/profile.html", {"form": form, "avatar_form": AvatarForm(), "customer": customer})


@login_required
@require_POST
def avatar_upload(request):
    customer = _customer(request)
    # Counted before the image is looked at: decoding one costs CPU and memory whether or not it is kept.
    if not ratelimit.consume(request, action="upload_avatar"):
        messages.error(request, UPLOAD_RATE_LIMITED)
        context = {"form": ProfileForm(instance=customer), "avatar_form": AvatarForm(), "customer": customer}
        return render(request, "accounts/profile.html", context, status=429)
    avatar_form = AvatarForm(request.POST, request.FILES)
    if avatar_form.is_valid():
        try:
            services.customer_set_avatar(customer=customer, upload=avatar_form.cleaned_data["avatar"])
        except AvatarError as error:
            avatar_form.add_error("avatar", error.message)
        else:
            messages.success(request, _("Your new avatar is in place."))
            return redirect("accounts:profile")
    form = ProfileForm(instance=customer)
    return render(
        request, "accounts/profile.html", {"form": form, "avatar_form": avatar_form, "customer": customer}, status=400
    )


@login_required
@require_POST
def avatar_remove(request):
    services.customer_remove_avatar(customer=_customer(request))
    messages.success(request, _("Your avatar was removed."))
    return redirect("accounts:profile")


@login_required
def social(request):
    customer = _customer(request)
    form = SocialForm(request.POST or None, instance=customer)
    if request.method == "POST" and form.is_valid():
        services.customer_update_social(customer=customer, data=form.cleaned_data)
        messages.success(request, _("Your social profile was saved."))
        return redirect("accounts:social")
    return render(request, "accounts/social.html", {"form": form, "customer": customer})


_password_change = PasswordChangeView.as_view(
    template_name="accounts/password.html", success_url=reverse_lazy("accounts:password")
)
_password_set = PasswordSetView.as_view(
    template_name="accounts/password.html", success_url=reverse_lazy("accounts:password")
)


@login_required
def password(request):
    """Change the password, or set a first one for a customer who only signed in by emailed code."""
    view = _password_change if request.user.has_usable_password() else _password_set
    return view(request)


@login_required
def directory(request):
    query = request.GET.get("q", "").strip()[:100]
    page = Paginator(selectors.directory_customers(query=query), per_page=24).get_page(request.GET.get("page"))
    return render(request, "accounts/directory.html", {"page": page, "query": query})


# --- hub links (/hub/<token>/) -----------------------------------------------------------------


def _hub_next(request) -> str:
    """Where to land after the hub link: a local ?next= path, else the billing page."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return hub_default_destination()


HUB_TOKEN_SESSION_KEY = "portal_hub_link_token"


def _hub_link_invalid(request, error):
    context = {"error": error.message, "form": HubLinkRequestForm()}
    return render(request, "accounts/hub_request.html", context, status=400)


@never_cache
@require_http_methods(["GET", "HEAD"])
def hub(request, token):
    """The link from an email: keep its token in the session and continue at an address without it.

    So the token is not in the address bar, the Referer of the next page, or any log line of the
    confirm step (a failed CSRF check logs the path). Mail scanners open links too: nothing here
    signs anyone in.
    """
    try:
        hub_link_token.check_token(token)
    except HubLinkError as error:
        return _hub_link_invalid(request, error)
    request.session[HUB_TOKEN_SESSION_KEY] = token
    target = reverse("accounts:hub_continue")
    if next_url := request.GET.get("next"):
        target += "?" + urlencode({"next": next_url})
    return redirect(target)


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def hub_continue(request):
    """GET shows a confirm page; only its POST signs the customer in (through allauth, so 2FA applies)."""
    try:
        customer = hub_link_token.check_token(request.session.get(HUB_TOKEN_SESSION_KEY, ""))
    except HubLinkError as error:
        return _hub_link_invalid(request, error)
    next_url = _hub_next(request)
    if request.method == "POST":
        del request.session[HUB_TOKEN_SESSION_KEY]
        try:
            return services.hub_sign_in(request=request, customer=customer, redirect_url=next_url)
        except HubLinkError as error:  # another request used the link first
            return _hub_link_invalid(request, error)
    if request.user.is_authenticated and request.user.pk == customer.user_id:
        return redirect(next_url)
    return render(request, "accounts/hub_confirm.html", {"link_customer": customer, "next": next_url})


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def hub_request(request):
    """Email a fresh hub link; the answer is the same whether or not the address has an account."""
    form = HubLinkRequestForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        email = form.cleaned_data["email"]
        if not ratelimit.consume(request, action="request_hub_link", key=email.lower()):
            form.add_error(None, HUB_LINK_RATE_LIMITED)
            return render(request, "accounts/hub_request.html", {"form": form}, status=429)
        services.hub_link_request(email=email)
        return render(request, "accounts/hub_sent.html", {"email": email})
    status = 400 if request.method == "POST" else 200
    return render(request, "accounts/hub_request.html", {"form": form}, status=status)


# --- one-click unsubscribe (List-Unsubscribe, RFC 8058) ------------------------------------------


# The signed token is what authenticates this endpoint: mail providers send the one-click POST
# from their servers, with no session and no CSRF cookie (see docs/architecture.md).
@csrf_exempt
@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def unsubscribe(request, token):
    """GET asks to confirm; POST (the button, or a mail provider's one-click) turns the category off."""
    try:
        customer, category = unsubscribe_token_check(token)
    except UnsubscribeLinkInvalid as error:
        return render(request, "accounts/unsubscribe.html", {"error": error.message}, status=400)
    if request.method == "POST":
        services.customer_unsubscribe(customer=customer, category=category)
        return render(request, "accounts/unsubscribe.html", {"category": category, "done": True})
    return render(request, "accounts/unsubscribe.html", {"category": category, "done": False})
