from allauth.account.views import PasswordChangeView, PasswordSetView
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRedirect

from . import selectors, services
from .avatars import AvatarError
from .forms import AvatarForm, ContactForm, ProfileForm, SocialForm


def _customer(request):
    return services.customer_get_or_create(user=request.user)


@login_required
def contact(request):
    customer = _customer(request)
    form = ContactForm(request.POST or None, instance=customer)
    if request.method == "POST" and form.is_valid():
        changed = services.customer_update_contact(customer=customer, data=form.cleaned_data, by=request.user)
        messages.success(request, _("Your contact information was saved.") if changed else _("Nothing changed."))
        if request.htmx:
            return HttpResponseClientRedirect(
                request.POST.get("next_page") == "home" and reverse("portal:home") or reverse("accounts:contact")
            )
        return redirect("accounts:contact")
    if request.htmx:
        return render(request, "accounts/partials/contact_form.html", {"form": form, "in_dialog": True})
    return render(request, "accounts/contact.html", {"form": form, "customer": customer})


@login_required
def profile(request):
    customer = _customer(request)
    form = ProfileForm(request.POST or None, instance=customer)
    if request.method == "POST" and form.is_valid():
        services.customer_update_profile(customer=customer, data=form.cleaned_data)
        messages.success(request, _("Your profile was saved."))
        return redirect("accounts:profile")
    return render(request, "accounts/profile.html", {"form": form, "avatar_form": AvatarForm(), "customer": customer})


@login_required
@require_POST
def avatar_upload(request):
    customer = _customer(request)
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
