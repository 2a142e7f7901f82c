"""Issue 16: the two hot lookups compiled once per connection (``django_oauth_mtls.prepared``).

A prepared lookup must answer exactly what the queryset answers — every field, the
``select_related`` objects (and their absence) without another query — and must keep nothing
but SQL text: a row changed or deleted between two requests is seen by the next one.
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest
from django.db import IntegrityError, connection, connections, models, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, get_application_model

from django_oauth_mtls.models import AccessTokenBinding, MTLSClient
from django_oauth_mtls.oauth2_validators import ACCESS_TOKEN_WITH_BINDING
from django_oauth_mtls.prepared import PreparedLookup, _plain_manager
from django_oauth_mtls.validator_client_auth import APPLICATION_WITH_MTLS

pytestmark = pytest.mark.django_db

Application = get_application_model()
AccessToken = get_access_token_model()


def concrete_values(instance: Any) -> dict[str, Any]:
    values = {f.attname: getattr(instance, f.attname) for f in instance._meta.concrete_fields}
    values["_state.db"] = instance._state.db
    values["_state.adding"] = instance._state.adding
    values["_state.fetch_mode"] = getattr(instance._state, "fetch_mode", None)  # Django 6.1
    return values


def test_both_lookups_are_prepared_for_dots_models(make_app):
    """Not the queryset fallback: each supported Django (5.2, 6.1) compiles them."""
    import django_oauth_mtls.prepared as prepared_module

    app = make_app(tls_client_auth_san_dns="client-one.example.com")
    token = make_token(app)
    APPLICATION_WITH_MTLS.first(Application, app.client_id)
    ACCESS_TOKEN_WITH_BINDING.first(AccessToken, token.token_checksum)
    default = connections["default"]
    compiled = prepared_module._compiled_on(default)
    assert compiled[(APPLICATION_WITH_MTLS, Application)] is not prepared_module._FALLBACK
    assert compiled[(ACCESS_TOKEN_WITH_BINDING, AccessToken)] is not prepared_module._FALLBACK


def orm_application(client_id: str) -> Any:
    return Application.objects.select_related("mtls").filter(client_id=client_id).first()


def orm_token(checksum: str) -> Any:
    return (
        AccessToken.objects.select_related("application", "user", "mtls_binding")
        .filter(token_checksum=checksum)
        .first()
    )


def make_token(app: Any, user: Any = None, *, x5t: str | None = None) -> Any:
    token = AccessToken.objects.create(
        user=user,
        application=app,
        token=f"tok-{app.pk}-{x5t}-{user}",
        expires=timezone.now() + dt.timedelta(hours=1),
        scope="read write",
    )
    if x5t:
        AccessTokenBinding.objects.create(access_token=token, x5t_s256=x5t)
    return token


def test_application_with_its_mtls_row_equals_the_queryset(make_app):
    app = make_app(tls_client_auth_san_dns="client-one.example.com")
    with CaptureQueriesContext(connection) as queries:
        prepared = APPLICATION_WITH_MTLS.first(Application, app.client_id)
        mtls = prepared.mtls  # from the same query
    assert len(queries) == 1
    assert "JOIN" in queries[0]["sql"] and app.client_id in queries[0]["sql"]
    expected = orm_application(app.client_id)
    assert type(prepared) is Application and prepared._state.db == "default"
    assert not prepared._state.adding
    assert concrete_values(prepared) == concrete_values(expected)
    assert concrete_values(mtls) == concrete_values(expected.mtls)
    assert isinstance(prepared.created, dt.datetime) and timezone.is_aware(prepared.created)
    assert mtls.tls_client_auth_san_dns == "client-one.example.com"


def test_application_without_mtls_row_caches_its_absence(make_app):
    app = make_app(None)
    prepared = APPLICATION_WITH_MTLS.first(Application, app.client_id)
    with CaptureQueriesContext(connection) as queries, pytest.raises(MTLSClient.DoesNotExist):
        prepared.mtls  # noqa: B018
    assert len(queries) == 0
    assert concrete_values(prepared) == concrete_values(orm_application(app.client_id))


@pytest.mark.parametrize("client_id", ["no-such-client", "", "' OR 1=1 --", "\u00e9\u4e2d"])
def test_unknown_client_id_is_none(make_app, client_id):
    make_app(None)
    assert APPLICATION_WITH_MTLS.first(Application, client_id) is None


def test_a_change_between_two_lookups_is_seen(make_app):
    """Only SQL text is kept: a method changed, a row deleted, is seen by the next lookup."""
    app = make_app(tls_client_auth_san_dns="client-one.example.com")
    assert APPLICATION_WITH_MTLS.first(Application, app.client_id).mtls.is_mtls
    MTLSClient.objects.filter(application=app).update(
        token_endpoint_auth_method="client_secret_basic"
    )
    assert not APPLICATION_WITH_MTLS.first(Application, app.client_id).mtls.is_mtls
    MTLSClient.objects.filter(application=app).delete()
    with pytest.raises(MTLSClient.DoesNotExist):
        APPLICATION_WITH_MTLS.first(Application, app.client_id).mtls  # noqa: B018
    Application.objects.filter(pk=app.pk).delete()
    assert APPLICATION_WITH_MTLS.first(Application, app.client_id) is None


def test_access_token_with_user_application_and_binding(make_app, user):
    app = make_app(tls_client_auth_san_dns="client-one.example.com")
    token = make_token(app, user, x5t="A" * 43)
    with CaptureQueriesContext(connection) as queries:
        prepared = ACCESS_TOKEN_WITH_BINDING.first(AccessToken, token.token_checksum)
        related = (prepared.application, prepared.user, prepared.mtls_binding)
    assert len(queries) == 1
    expected = orm_token(token.token_checksum)
    assert concrete_values(prepared) == concrete_values(expected)
    assert concrete_values(related[0]) == concrete_values(expected.application)
    assert concrete_values(related[1]) == concrete_values(expected.user)
    assert related[2].x5t_s256 == "A" * 43
    assert prepared.resource == expected.resource  # a JSON field, converted as the ORM does
    assert prepared.is_valid(["read"]) and not prepared.is_expired()


def test_access_token_without_user_or_binding(make_app):
    token = make_token(make_app(None))
    prepared = ACCESS_TOKEN_WITH_BINDING.first(AccessToken, token.token_checksum)
    with CaptureQueriesContext(connection) as queries:
        assert prepared.user is None
        with pytest.raises(AccessTokenBinding.DoesNotExist):
            prepared.mtls_binding  # noqa: B018
    assert len(queries) == 0
    assert ACCESS_TOKEN_WITH_BINDING.first(AccessToken, "0" * 64) is None


def test_revoked_token_is_gone_at_the_next_lookup(make_app):
    token = make_token(make_app(None), x5t="B" * 43)
    assert ACCESS_TOKEN_WITH_BINDING.first(AccessToken, token.token_checksum) is not None
    token.revoke()
    assert ACCESS_TOKEN_WITH_BINDING.first(AccessToken, token.token_checksum) is None


@pytest.mark.django_db(transaction=True)
def test_each_thread_compiles_for_its_own_connection(make_app):
    lookup = PreparedLookup(lambda model, value: model.objects.filter(client_id=value))
    app = make_app(tls_client_auth_san_dns="client-one.example.com")
    assert lookup.first(Application, app.client_id).pk == app.pk
    seen: list[Any] = []

    def other_thread() -> None:
        try:  # a thread of its own: its own connection, its own compiled query
            seen.append(lookup.first(Application, app.client_id))
            seen.append(connections["default"])
        finally:
            connections.close_all()

    worker = threading.Thread(target=other_thread)
    worker.start()
    worker.join()
    assert seen[0].pk == app.pk
    # Each connection holds its own entry, on the connection object: it goes with the thread.
    from django_oauth_mtls.prepared import _compiled_on

    mine = _compiled_on(connections["default"])[(lookup, Application)]
    assert seen[1] is not connections["default"]
    assert _compiled_on(seen[1])[(lookup, Application)] is not mine


class FilteringManager(models.Manager):
    def get_queryset(self) -> Any:
        return super().get_queryset().filter(skip_authorization=True)


class FilteringQuerySet(models.QuerySet):
    pass


def test_a_customised_manager_or_queryset_is_not_prepared():
    class WithManager:
        objects = FilteringManager()

    class WithQuerySet:
        objects = models.Manager.from_queryset(FilteringQuerySet)()

    class Plain:
        objects = models.Manager()

    class NoObjects:
        _default_manager = models.Manager()

    assert not _plain_manager(WithManager)  # type: ignore[arg-type]
    assert not _plain_manager(WithQuerySet)  # type: ignore[arg-type]
    assert _plain_manager(Plain)  # type: ignore[arg-type]
    assert not _plain_manager(NoObjects)  # type: ignore[arg-type]
    assert _plain_manager(Application) and _plain_manager(AccessToken)


def test_falls_back_to_the_queryset_when_it_cannot_prepare(make_app, monkeypatch):
    import django_oauth_mtls.prepared as prepared_module

    monkeypatch.setattr(prepared_module, "_plain_manager", lambda model: False)
    lookup = PreparedLookup(lambda model, value: model.objects.filter(client_id=value))
    app = make_app(tls_client_auth_san_dns="client-one.example.com")
    assert lookup.first(Application, app.client_id).pk == app.pk
    assert (
        prepared_module._compiled_on(connections["default"])[(lookup, Application)]
        is prepared_module._FALLBACK
    )
    assert lookup.first(Application, "missing") is None


def test_a_query_with_two_parameters_for_the_value_falls_back(make_app):
    import django_oauth_mtls.prepared as prepared_module

    lookup = PreparedLookup(
        lambda model, value: (
            model.objects.filter(client_id=value) | model.objects.filter(name=value)
        )
    )
    app = make_app(tls_client_auth_san_dns="client-one.example.com")
    assert lookup.first(Application, app.client_id).pk == app.pk
    assert (
        prepared_module._compiled_on(connections["default"])[(lookup, Application)]
        is prepared_module._FALLBACK
    )


def test_the_binding_insert_writes_the_row_in_the_callers_transaction(make_app):
    from django_oauth_mtls.oauth2_validators import NEW_ACCESS_TOKEN_BINDING

    token = make_token(make_app(None))
    with CaptureQueriesContext(connection) as queries:
        NEW_ACCESS_TOKEN_BINDING.insert(access_token_id=token.pk, x5t_s256="C" * 43)
    assert len(queries) == 1 and queries[0]["sql"].startswith("INSERT INTO")
    assert AccessTokenBinding.objects.get(access_token=token).x5t_s256 == "C" * 43
    assert ACCESS_TOKEN_WITH_BINDING.first(AccessToken, token.token_checksum).mtls_binding

    other = make_token(make_app(None), x5t=None)
    with pytest.raises(RuntimeError), transaction.atomic():
        NEW_ACCESS_TOKEN_BINDING.insert(access_token_id=other.pk, x5t_s256="D" * 43)
        raise RuntimeError("rolled back with the token")
    assert not AccessTokenBinding.objects.filter(access_token_id=other.pk).exists()
    with pytest.raises(IntegrityError), transaction.atomic():  # one binding per token
        NEW_ACCESS_TOKEN_BINDING.insert(access_token_id=token.pk, x5t_s256="E" * 43)


def test_an_insert_that_does_not_cover_the_model_uses_the_orm(make_app):
    import django_oauth_mtls.prepared as prepared_module
    from django_oauth_mtls.prepared import PreparedInsert

    partial = PreparedInsert(AccessTokenBinding, ("access_token",))
    token = make_token(make_app(None))
    partial.insert(access_token_id=token.pk, x5t_s256="F" * 43)
    assert (
        prepared_module._compiled_on(connections["default"])[partial] is prepared_module._FALLBACK
    )
    assert AccessTokenBinding.objects.get(access_token=token).x5t_s256 == "F" * 43


@pytest.mark.django_db(transaction=True)
def test_a_finished_threads_entries_go_with_its_connection(make_app):
    """Bounded: what a thread compiled lives on its connection and is freed with it."""
    import gc
    import weakref

    app = make_app(None)
    refs: list[Any] = []

    def request_thread() -> None:
        try:
            assert APPLICATION_WITH_MTLS.first(Application, app.client_id).pk == app.pk
            refs.append(weakref.ref(connections["default"]))
        finally:
            connections.close_all()

    for _ in range(3):
        worker = threading.Thread(target=request_thread)
        worker.start()
        worker.join()
    gc.collect()
    assert len(refs) == 3
    assert [ref() for ref in refs] == [None, None, None]
