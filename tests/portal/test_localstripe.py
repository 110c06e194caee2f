"""The localstripe launcher (portal.localstripe): localstripe with the tax ID types Stripe accepts."""

import sys

import pytest
import requests

from accounts.taxids import TAX_ID_TYPES
from portal.localstripe import STRIPE_TAX_ID_TYPES
from tests.servers import free_port, loopback_server

AUTH = ("sk_test_localstripe", "")


@pytest.fixture(scope="module")
def launched(tmp_path_factory):
    port = free_port()
    state = tmp_path_factory.mktemp("localstripe") / "state.pickle"
    command = [sys.executable, "-m", "portal.localstripe", "--port", str(port), "--state", str(state)]
    with loopback_server(command, port=port, name="localstripe") as url:
        yield url


def test_every_tax_id_type_the_contact_form_offers_is_accepted():
    assert set(TAX_ID_TYPES) <= STRIPE_TAX_ID_TYPES


@pytest.mark.parametrize(
    ("tax_type", "value", "country"), [("gb_vat", "GB980780684", "GB"), ("us_ein", "12-3456789", "US")]
)
def test_a_customer_gets_a_tax_id_of_a_type_localstripe_did_not_know(launched, tax_type, value, country):
    customer = requests.post(f"{launched}/v1/customers", data={"name": "Dana"}, auth=AUTH, timeout=10).json()

    response = requests.post(
        f"{launched}/v1/customers/{customer['id']}/tax_ids",
        data={"type": tax_type, "value": value},
        auth=AUTH,
        timeout=10,
    )

    assert response.status_code == 200, response.text
    assert (response.json()["type"], response.json()["value"], response.json()["country"]) == (tax_type, value, country)


def test_an_unknown_tax_id_type_or_customer_is_still_refused(launched):
    customer = requests.post(f"{launched}/v1/customers", data={"name": "Dana"}, auth=AUTH, timeout=10).json()

    unknown_type = requests.post(
        f"{launched}/v1/customers/{customer['id']}/tax_ids",
        data={"type": "xx_vat", "value": "X1"},
        auth=AUTH,
        timeout=10,
    )
    unknown_customer = requests.post(
        f"{launched}/v1/customers/cus_missing/tax_ids",
        data={"type": "gb_vat", "value": "GB980780684"},
        auth=AUTH,
        timeout=10,
    )

    assert unknown_type.status_code == 400
    assert unknown_customer.status_code == 404
