from django import template

from purchases.money import format_money

register = template.Library()


@register.filter
def money(amount, currency):
    """{{ purchase.amount|money:purchase.currency }} → "£49.00", in the active locale."""
    if amount is None or not currency:
        return ""
    return format_money(int(amount), currency)
