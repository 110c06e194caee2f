from django.urls import path

from . import views

app_name = "billing"

urlpatterns = [
    path("", views.index, name="index"),
    path("cards/new/", views.card_new, name="card_new"),
    path("cards/setup/", views.card_setup, name="card_setup"),
    path("cards/<int:pk>/default/", views.card_make_default, name="card_default"),
    path("cards/<int:pk>/remove/", views.card_delete, name="card_remove"),
    path("cards/hosted/", views.hosted_update, name="hosted_update"),
    path("subscriptions/<int:pk>/cancel/", views.subscription_cancel_confirm, name="subscription_cancel"),
    path("subscriptions/<int:pk>/keep/", views.subscription_keep, name="subscription_keep"),
    path("subscriptions/<int:pk>/pause/", views.subscription_pause, name="subscription_pause"),
    path("subscriptions/<int:pk>/resume/", views.subscription_resume, name="subscription_resume"),
    path("subscriptions/<int:pk>/plan/", views.subscription_plan_change, name="subscription_plan"),
    path(
        "subscriptions/<int:pk>/plan/scheduled/cancel/",
        views.subscription_scheduled_change_cancel,
        name="subscription_scheduled_change_cancel",
    ),
    path("subscriptions/<int:pk>/pay/", views.subscription_pay, name="subscription_pay"),
]
