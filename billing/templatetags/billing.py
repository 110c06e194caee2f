from django import template

from billing.selectors import customer_has_live_subscription

register = template.Library()


@register.simple_tag
def has_live_subscription(customer) -> bool:
    """Whether the customer pays for a subscription now (one query; used by the home page's dialog)."""
    return bool(customer) and customer_has_live_subscription(customer=customer)
