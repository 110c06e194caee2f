"""portal.compiled.CompiledQuery: the same rows and instances as the ORM, from SQL compiled once."""

from unittest import mock

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db.models import Count
from django.db.models.sql.compiler import SQLCompiler

from accounts.models import Customer, User
from portal.compiled import CompiledQuery
from purchases.models import Receipt
from tests.factories import CustomerFactory, ReceiptFactory, UserFactory

user_with_customer = CompiledQuery(
    lambda user_id: User.objects.select_related("customer").filter(pk=user_id), user_id=int
)


def _field_values(instance) -> dict:
    return {field.attname: getattr(instance, field.attname) for field in instance._meta.concrete_fields}


@pytest.mark.django_db
def test_instances_equal_what_the_orm_loads_related_object_included(django_assert_num_queries):
    customer = CustomerFactory(
        full_name="Ada Lovelace", custom_field_values={"cohort": "2026"}, time_zone="Europe/Paris"
    )
    expected = User.objects.select_related("customer").get(pk=customer.user.pk)

    with django_assert_num_queries(1):
        (user,) = user_with_customer(user_id=customer.user.pk)
        assert user.customer.full_name == "Ada Lovelace"  # from the same query

    assert _field_values(user) == _field_values(expected)
    assert _field_values(user.customer) == _field_values(expected.customer)
    assert user.customer.custom_field_values == {"cohort": "2026"}  # the JSON column's converter ran
    assert user.customer.user is user
    assert user._state.adding is False and user._state.db == "default"


@pytest.mark.django_db
def test_each_call_binds_its_own_values_and_an_unknown_id_finds_nothing():
    first, second = CustomerFactory(), CustomerFactory()
    assert user_with_customer(user_id=first.user.pk)[0].email == first.user.email
    assert user_with_customer(user_id=second.user.pk)[0].email == second.user.email
    assert user_with_customer(user_id=second.user.pk + 1000) == []


@pytest.mark.django_db
def test_a_missing_reverse_one_to_one_reads_as_missing_without_a_query(django_assert_num_queries):
    user = UserFactory()
    Customer.objects.filter(user=user).delete()
    with django_assert_num_queries(1):
        (loaded,) = user_with_customer(user_id=user.pk)
        with pytest.raises(Customer.DoesNotExist):
            loaded.customer  # noqa: B018 - the access is the test


@pytest.mark.django_db
def test_the_sql_is_compiled_once_then_only_run():
    customer = CustomerFactory()
    query = CompiledQuery(lambda user_id: User.objects.filter(pk=user_id), user_id=int)
    query(user_id=customer.user.pk)
    with mock.patch.object(SQLCompiler, "as_sql", side_effect=AssertionError("compiled again")):
        assert query(user_id=customer.user.pk)[0].pk == customer.user.pk


@pytest.mark.django_db
def test_annotations_string_arguments_and_values_list_rows():
    receipt = ReceiptFactory()
    counted = CompiledQuery(
        lambda email: Customer.objects.filter(user__email=email).annotate(purchases_count=Count("purchases")),
        email=str,
    )
    (loaded,) = counted(email=receipt.purchase.customer.user.email)
    assert loaded.pk == receipt.purchase.customer.pk and loaded.purchases_count == 1

    numbers = CompiledQuery(
        lambda customer_id: Receipt.objects.filter(purchase__customer_id=customer_id).values_list(
            "number", "issued_at"
        ),
        customer_id=int,
    )
    assert numbers(customer_id=receipt.purchase.customer_id) == [(receipt.number, receipt.issued_at)]
    flat = CompiledQuery(
        lambda customer_id: Receipt.objects.filter(purchase__customer_id=customer_id).values_list("number", flat=True),
        customer_id=int,
    )
    assert flat(customer_id=receipt.purchase.customer_id) == [receipt.number]


@pytest.mark.django_db
def test_an_argument_that_does_not_reach_the_sql_is_refused_when_compiled():
    ignored = CompiledQuery(lambda user_id: User.objects.filter(pk=1), user_id=int)
    with pytest.raises(ImproperlyConfigured, match="'user_id' does not reach the SQL"):
        ignored(user_id=1)
    # A lookup that rewrites its value (here into a LIKE pattern) does not bind it as given either.
    rewritten = CompiledQuery(lambda domain: User.objects.filter(email__endswith=domain), domain=str)
    with pytest.raises(ImproperlyConfigured, match="'domain' does not reach the SQL"):
        rewritten(domain="@example.com")


@pytest.mark.django_db
def test_what_it_cannot_keep_is_refused():
    with pytest.raises(ImproperlyConfigured, match="cannot prefetch"):
        CompiledQuery(lambda user_id: User.objects.prefetch_related("groups").filter(pk=user_id), user_id=int)(
            user_id=1
        )
    with pytest.raises(ImproperlyConfigured, match="not ValuesIterable"):
        CompiledQuery(lambda user_id: User.objects.filter(pk=user_id).values("email"), user_id=int)(user_id=1)
    with pytest.raises(ImproperlyConfigured, match="only int and str"):
        CompiledQuery(lambda when: User.objects.filter(last_login=when), when=object)
    with pytest.raises(TypeError):
        user_with_customer(pk=1)


@pytest.mark.django_db
def test_a_sliced_query_binds_offset_and_limit_and_one_compile_serves_every_page():
    users = sorted(UserFactory.create_batch(5, password=None), key=lambda user: user.pk)
    newest_first = CompiledQuery(
        lambda first_id: User.objects.filter(pk__gte=first_id).order_by("-pk"), sliced=True, first_id=int
    )
    expected = [user.pk for user in reversed(users)]
    assert [user.pk for user in newest_first(first_id=users[0].pk, offset=0, limit=2)] == expected[0:2]
    with mock.patch.object(SQLCompiler, "as_sql", side_effect=AssertionError("compiled again")):
        assert [user.pk for user in newest_first(first_id=users[0].pk, offset=2, limit=2)] == expected[2:4]
        assert [user.pk for user in newest_first(first_id=users[0].pk, offset=4, limit=2)] == expected[4:5]
        assert newest_first(first_id=users[0].pk, offset=10, limit=2) == []
    with pytest.raises(TypeError, match="needs a limit"):
        newest_first(first_id=users[0].pk)
    with pytest.raises(TypeError, match="sliced=True"):
        user_with_customer(user_id=1, limit=1)


@pytest.mark.django_db
def test_a_list_argument_matches_any_of_up_to_its_size_values(django_assert_num_queries):
    users = UserFactory.create_batch(4, password=None)
    among = CompiledQuery(lambda ids: User.objects.filter(pk__in=ids).order_by("pk"), ids=(int, 3))

    def emails(ids):
        return [user.email for user in among(ids=ids)]

    assert emails([users[2].pk, users[0].pk]) == [users[0].email, users[2].email]  # padded to three places
    assert emails([users[3].pk, users[1].pk, users[0].pk]) == [users[0].email, users[1].email, users[3].email]
    with django_assert_num_queries(0):
        assert emails([]) == []
    with pytest.raises(ValueError, match="at most 3"):
        emails([user.pk for user in users])
