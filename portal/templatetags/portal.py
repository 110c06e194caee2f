from django import template

from accounts.selectors import customer_social_links

register = template.Library()


@register.filter
def social_links(customer):
    """The customer's social profiles as (label, https URL) pairs."""
    return customer_social_links(customer=customer)
