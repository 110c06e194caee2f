"""Media on S3 (django-storages), for several app nodes without a shared filesystem.

The settings read MEDIA_S3_* from the environment (portal.settings.media_storages); here that
configuration drives the real boto3 client against moto's S3 server on loopback, a stateful
stand-in for S3 as localstripe is for Stripe. An avatar uploaded on one node is in the bucket, is
shown from it, reaches another node's receipt PDF (the logo) and is deleted from it again.
"""

import io
import json
import os
import sys
import urllib.request

import boto3
import pytest
from django.core.files.storage import default_storage
from django.test import Client

from accounts.models import Customer
from portal.models import SiteSettings
from portal.settings import media_storages
from tests.accounts.test_avatars import encode, photo
from tests.factories import RecordedPurchaseFactory
from tests.security.test_uploads import logo_form_data
from tests.servers import free_port, loopback_server

pytestmark = pytest.mark.django_db

BUCKET = "portal-media"
# The bucket policy docs/operations.md gives: anyone may read the media (avatars, the logo), no one
# may list the bucket or write to it without credentials.
PUBLIC_READ = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{BUCKET}/media/*"}
    ],
}


@pytest.fixture(scope="module")
def s3_endpoint():
    """moto's S3 server on a free loopback port, for this module."""
    port = free_port()
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    with loopback_server(command, port=port, name="moto's S3 server", timeout=30) as url:
        yield url


@pytest.fixture
def s3_media(s3_endpoint, settings, monkeypatch):
    """STORAGES as the settings build them from a deployment's environment, against the server."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }.items():
        monkeypatch.setenv(name, value)
    environ = {
        "MEDIA_S3_BUCKET": BUCKET,
        "MEDIA_S3_ENDPOINT_URL": s3_endpoint,
        "MEDIA_S3_REGION": "eu-west-1",
    }
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="eu-west-1")
    client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    client.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps(PUBLIC_READ))  # as docs/operations.md says
    settings.STORAGES = media_storages(environ, settings.STORAGES)
    yield client
    for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        client.delete_object(Bucket=BUCKET, Key=item["Key"])
    client.delete_bucket(Bucket=BUCKET)


def keys(client) -> list[str]:
    return [item["Key"] for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", [])]


def test_without_s3_variables_media_stay_on_the_filesystem():
    storages = media_storages({}, {"default": {"BACKEND": "django.core.files.storage.FileSystemStorage"}})

    assert storages["default"]["BACKEND"] == "django.core.files.storage.FileSystemStorage"


def test_the_s3_settings_come_from_the_environment():
    storages = media_storages(
        {"MEDIA_S3_BUCKET": "b", "MEDIA_S3_CUSTOM_DOMAIN": "media.example.com", "MEDIA_S3_SIGNED_URLS": "1"}, {}
    )

    options = storages["default"]["OPTIONS"]
    assert storages["default"]["BACKEND"] == "storages.backends.s3.S3Storage"
    assert (options["bucket_name"], options["custom_domain"], options["querystring_auth"]) == (
        "b",
        "media.example.com",
        True,
    )
    assert options["file_overwrite"] is False  # two nodes never write over each other's upload


def test_an_avatar_goes_to_the_bucket_is_shown_from_it_and_is_deleted_from_it(
    s3_media, client_logged_in, customer, django_capture_on_commit_callbacks
):
    assert default_storage.__class__.__name__ == "S3Storage"

    response = client_logged_in.post(
        "/settings/profile/avatar/", {"avatar": io.BytesIO(encode(photo((300, 200)), "PNG"))}, follow=True
    )

    assert response.status_code == 200
    stored = Customer.objects.get(pk=customer.pk).avatar.name
    assert keys(s3_media) == [f"media/{stored}"]
    url = Customer.objects.get(pk=customer.pk).avatar.url
    assert url.startswith(s3_media.meta.endpoint_url + f"/{BUCKET}/media/avatars/")
    assert url.split("?")[0] in client_logged_in.get("/settings/profile/").content.decode().replace("&amp;", "&")
    with urllib.request.urlopen(url, timeout=5) as fetched:  # what a browser does with that address
        assert fetched.read()[8:12] == b"WEBP"

    with django_capture_on_commit_callbacks(execute=True):  # the file goes once the change is committed
        client_logged_in.post("/settings/profile/avatar/remove/")

    assert keys(s3_media) == []


def test_a_logo_stored_by_one_node_is_drawn_by_another_nodes_receipt_pdf(s3_media, creator_client, customer, settings):
    SiteSettings.objects.get_or_create(pk=1)
    site = SiteSettings.objects.get(pk=1)
    data = logo_form_data(creator_client)
    data["logo"] = io.BytesIO(encode(photo((800, 200)), "PNG"))
    data["logo"].name = "logo.png"
    assert creator_client.post(f"/admin/portal/sitesettings/{site.pk}/change/", data).status_code == 302
    [logo_key] = keys(s3_media)
    assert logo_key.startswith("media/site/logo-") and logo_key.endswith(".png")
    receipt = RecordedPurchaseFactory(customer=customer).receipts.get()

    other_node = Client()  # nothing local: the PDF reads the logo back from the bucket
    other_node.force_login(customer.user, backend="accounts.backends.PortalAuthenticationBackend")
    pdf = other_node.get(f"/purchases/receipts/{receipt.number}/pdf/")

    assert pdf.status_code == 200
    assert b"/Subtype /Image" in pdf.content  # the logo is in it
    assert not os.path.exists(settings.MEDIA_ROOT) or not os.listdir(settings.MEDIA_ROOT)  # nothing on disk
