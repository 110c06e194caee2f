"""Tax ID types the portal accepts, mapped to Stripe's tax ID types and python-stdnum validators."""

from dataclasses import dataclass
from importlib import import_module

from django.utils.translation import gettext_lazy as _

EU_COUNTRIES = frozenset("AT BE BG CY CZ DE DK EE ES FI FR GR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK".split())


@dataclass(frozen=True)
class TaxIdType:
    code: str  # Stripe's tax_id type
    label: str
    countries: frozenset[str]
    stdnum_module: str
    example: str
    formatted: bool = False  # Stripe's documented form is the formatted one (us_ein 12-3456789 …)


TAX_ID_TYPES: dict[str, TaxIdType] = {
    t.code: t
    for t in [
        TaxIdType("eu_vat", _("EU VAT number"), EU_COUNTRIES, "stdnum.eu.vat", "DE123456788"),
        TaxIdType("gb_vat", _("UK VAT number"), frozenset({"GB"}), "stdnum.gb.vat", "GB980780684"),
        TaxIdType("us_ein", _("US EIN"), frozenset({"US"}), "stdnum.us.ein", "12-3456789", formatted=True),
        TaxIdType("au_abn", _("Australian ABN"), frozenset({"AU"}), "stdnum.au.abn", "51 824 753 556"),
        TaxIdType("ca_bn", _("Canadian BN"), frozenset({"CA"}), "stdnum.ca.bn", "123456782"),
        TaxIdType(
            "ch_vat", _("Swiss VAT number"), frozenset({"CH"}), "stdnum.ch.vat", "CHE-113.587.466 MWST", formatted=True
        ),
        TaxIdType("no_vat", _("Norwegian VAT number"), frozenset({"NO"}), "stdnum.no.mva", "NO995525828MVA"),
        TaxIdType("nz_gst", _("New Zealand GST number"), frozenset({"NZ"}), "stdnum.nz.ird", "49-091-850"),
        TaxIdType("in_gst", _("Indian GSTIN"), frozenset({"IN"}), "stdnum.in_.gstin", "27AAPFU0939F1ZV"),
        TaxIdType(
            "br_cnpj", _("Brazilian CNPJ"), frozenset({"BR"}), "stdnum.br.cnpj", "16.727.230/0001-97", formatted=True
        ),
    ]
}

TAX_ID_TYPE_CHOICES = [(t.code, t.label) for t in TAX_ID_TYPES.values()]

# The part of an EU VAT number before the digits is the country, except Greece's "EL".
_EU_VAT_PREFIX_TO_COUNTRY = {"EL": "GR"}


def tax_id_compact(*, type_code: str, value: str) -> str:
    """Return the value in the form Stripe documents for the type: compact, or formatted for a few."""
    tax_type = TAX_ID_TYPES[type_code]
    module = import_module(tax_type.stdnum_module)
    if tax_type.formatted:
        return module.format(value)
    compact = module.compact(value)
    if type_code == "gb_vat" and compact[:1].isdigit():
        compact = f"GB{compact}"  # python-stdnum drops the prefix; Stripe's gb_vat keeps it
    return compact


def tax_id_is_valid(*, type_code: str, value: str) -> bool:
    module = import_module(TAX_ID_TYPES[type_code].stdnum_module)
    return bool(module.is_valid(value))


def eu_vat_country(value: str) -> str:
    prefix = value[:2].upper()
    return _EU_VAT_PREFIX_TO_COUNTRY.get(prefix, prefix)
