from django.urls import path

from . import views

app_name = "purchases"

urlpatterns = [
    path("", views.index, name="index"),
    path("receipts/<str:number>/", views.receipt, name="receipt"),
    path("receipts/<str:number>/pdf/", views.receipt_pdf, name="receipt_pdf"),
    path("receipts/<str:number>/correct/", views.receipt_correct, name="receipt_correct"),
]
