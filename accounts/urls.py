from django.urls import path

from . import views

app_name = "accounts"

urlpatterns = [
    path("settings/contact/", views.contact, name="contact"),
    path("settings/profile/", views.profile, name="profile"),
    path("settings/profile/avatar/", views.avatar_upload, name="avatar_upload"),
    path("settings/profile/avatar/remove/", views.avatar_remove, name="avatar_remove"),
    path("settings/social/", views.social, name="social"),
    path("settings/password/", views.password, name="password"),
    # The data page acts across apps (receipts, the processor): its views live above them, in portal.
    path("directory/", views.directory, name="directory"),
    path("hub/new-link/", views.hub_request, name="hub_request"),
    path("hub/continue/", views.hub_continue, name="hub_continue"),
    path("hub/<str:token>/", views.hub, name="hub"),
    path("email/unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
]
