from django import template

from portal.fragments import stored_values

register = template.Library()


@register.filter
def purchase_rows_key(purchases) -> str:
    """Everything the purchases table's rows show, as one {% cache %} key: a changed row is a new key.

    The offer's name, date, amounts, status and receipts of each purchase (from purchases_for_customer's
    rows, nothing queried here); the template adds the language and time zone they are shown in."""
    return repr(
        [
            (
                purchase.pk,
                purchase.offer.name,
                purchase.purchased_at.isoformat(),
                purchase.amount,
                purchase.amount_refunded,
                purchase.currency,
                purchase.status,
                [(receipt.number, receipt.corrects_id) for receipt in purchase.receipt_list],
            )
            for purchase in purchases
        ]
    )


@register.filter
def product_list_key(products) -> str:
    """Everything the product list shows, as one {% cache %} key: every stored value of products_for_customer's
    rows, so a column shown later is in the key without anyone remembering it; the template adds the language."""
    return repr([stored_values(product) for product in products])
