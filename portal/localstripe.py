"""Run localstripe with its state file where we choose, not in /tmp/localstripe.pickle.

    python -m portal.localstripe --port 8420 --state var/localstripe.pickle [--from-scratch]

localstripe hard-codes its pickle path; this launcher points the store's load and dump at
--state, lets localstripe accept the tax ID types Stripe accepts, and then hands over to
localstripe's own server. It imports nothing from Django.
"""

import argparse
import os
import pickle
import sys

from localstripe import resources
from localstripe.errors import UserError

# The tax ID types the contact form offers (accounts.taxids), all of which Stripe accepts; localstripe
# knows only eu_vat, nz_gst, au_abn and es_cif, and would refuse the demo customer's UK VAT number.
STRIPE_TAX_ID_TYPES = frozenset(
    {"eu_vat", "gb_vat", "us_ein", "au_abn", "ca_bn", "ch_vat", "no_vat", "nz_gst", "in_gst", "br_cnpj", "es_cif"}
)


def tax_id_init(self, country=None, customer=None, type=None, value=None, **kwargs):
    """localstripe's TaxId.__init__ for Stripe's tax ID types; the value's format is Stripe's to judge."""
    if kwargs:
        raise UserError(400, "Unexpected " + ", ".join(kwargs.keys()))
    if not (
        isinstance(customer, str)
        and customer.startswith("cus_")
        and type in STRIPE_TAX_ID_TYPES
        and isinstance(value, str)
        and value
    ):
        raise UserError(400, "Bad request")
    resources.Customer._api_retrieve(customer)  # 404 for an unknown customer, as Stripe answers
    resources.StripeObject.__init__(self)
    self.country = country or (value[:2].upper() if type == "eu_vat" else type[:2].upper())
    self.customer = customer
    self.type = type
    self.value = value
    self.verification = {"status": "verified", "verified_name": "", "verified_address": ""}


def customer_add_tax_id(cls, id, type=None, value=None, **kwargs):
    """POST /v1/customers/{id}/tax_ids, its type checked by tax_id_init instead of localstripe's four."""
    if kwargs:
        raise UserError(400, "Unexpected " + ", ".join(kwargs.keys()))
    customer = cls._api_retrieve(id)
    tax_id = resources.TaxId(customer=id, type=type, value=value)
    customer.tax_ids._list.append(tax_id)
    return tax_id


def accept_stripe_tax_id_types():
    """Patch localstripe before its server module registers the routes (it keeps the functions then)."""
    resources.TaxId.__init__ = tax_id_init
    resources.Customer._api_add_tax_id = classmethod(customer_add_tax_id)
    resources.extra_apis[:] = [
        (method, url, resources.Customer._api_add_tax_id if url == "/v1/customers/{id}/tax_ids" else func)
        if method == "POST"
        else (method, url, func)
        for method, url, func in resources.extra_apis
    ]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8420)
    parser.add_argument("--state", required=True, help="path of the state file")
    parser.add_argument("--from-scratch", action="store_true", help="ignore an existing state file")
    args = parser.parse_args(argv)
    state = os.path.abspath(args.state)
    os.makedirs(os.path.dirname(state), exist_ok=True)

    def try_load_from_disk(store):
        try:
            with open(state, "rb") as handle:
                old = pickle.load(handle)
        except FileNotFoundError:
            return
        store.clear()
        store.update(old)

    def dump_to_disk(store):
        tmp = f"{state}.tmp"
        with open(tmp, "wb") as handle:
            pickle.dump(dict(store), handle, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, state)

    resources.Store.try_load_from_disk = try_load_from_disk
    resources.Store.dump_to_disk = dump_to_disk
    accept_stripe_tax_id_types()
    from localstripe import server  # only now: importing it registers the routes

    sys.argv = [sys.argv[0], "--port", str(args.port)] + (["--from-scratch"] if args.from_scratch else [])
    server.start()


if __name__ == "__main__":
    main()
