"""Attack review of ``django_oauth_mtls.prepared`` (issue #16): the prepared lookups and the
binding ``INSERT`` must answer exactly what the ordinary ORM code they replace answers.

Every test compares the prepared path with the queryset (or ``Model.save``) it replaced:
``model.objects.select_related(...).filter(...).first()`` for the two lookups (DOT's own
``_load_application`` / ``_load_access_token`` use ``Model.objects``), and
``AccessTokenBinding.objects.create(access_token=token, ...)`` for the binding.

Runs on SQLite and PostgreSQL (``DATABASE_URL``), Django 5.2 and 6.1; the parity tests also run
under ``tests.settings_swapped`` (a subprocess, see ``test_parity_under_a_swapped_application``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
import unicodedata
from pathlib import Path
from typing import Any

import django
import pytest
from django.conf import settings as django_settings
from django.db import (
    DatabaseError,
    IntegrityError,
    connection,
    connections,
    models,
    transaction,
)
from django.db.transaction import TransactionManagementError
from django.test.utils import CaptureQueriesContext, isolate_apps
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, get_application_model
from oauth2_provider.signals import app_authorized

import django_oauth_mtls.prepared as prepared_module
from django_oauth_mtls.binding import x5t_s256_of
from django_oauth_mtls.models import AccessTokenBinding, MTLSClient
from django_oauth_mtls.oauth2_validators import (
    ACCESS_TOKEN_WITH_BINDING,
    NEW_ACCESS_TOKEN_BINDING,
)
from django_oauth_mtls.prepared import PreparedLookup
from django_oauth_mtls.validator_client_auth import APPLICATION_WITH_MTLS
from tests.integration.conftest import run_pytest_swapped, token_request
from tests.integration.test_prepared import orm_application, orm_token

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
Application = get_application_model()
AccessToken = get_access_token_model()
X5T_A = "A" * 42 + "E"
X5T_B = "B" * 42 + "E"


# --- helpers -------------------------------------------------------------------------------------


def snapshot(instance: Any) -> dict[str, Any] | None:
    """Every concrete value and the state Django keeps, for an exact comparison."""
    if instance is None:
        return None
    values: dict[str, Any] = {
        f.attname: getattr(instance, f.attname) for f in instance._meta.concrete_fields
    }
    values["__class__"] = type(instance)
    values["_state.db"] = instance._state.db
    values["_state.adding"] = instance._state.adding
    values["_state.fetch_mode"] = getattr(instance._state, "fetch_mode", None)
    for name, value in list(values.items()):
        if isinstance(value, dt.datetime):  # the offset as well as the instant
            values[name] = (value, value.tzinfo and value.utcoffset())
    return values


def related_snapshot(instance: Any, name: str) -> Any:
    try:
        return snapshot(getattr(instance, name))
    except models.ObjectDoesNotExist as error:
        return type(error)


def application_view(app: Any) -> Any:
    if app is None:
        return None
    return snapshot(app), related_snapshot(app, "mtls")


def token_view(token: Any) -> Any:
    if token is None:
        return None
    return (
        snapshot(token),
        related_snapshot(token, "application"),
        related_snapshot(token, "user"),
        related_snapshot(token, "mtls_binding"),
    )


def outcome(call: Any) -> Any:
    """What a lookup answered: its view, or the type of the exception it raised (in a savepoint,
    so that a database error does not break the test's transaction on PostgreSQL)."""
    try:
        with transaction.atomic():
            return ("row", call())
    except Exception as error:  # noqa: BLE001
        # Django wraps driver errors; compare by Django's class (ValueError stays ValueError).
        kind = type(error)
        for base in (IntegrityError, DatabaseError, UnicodeError, ValueError):
            if isinstance(error, base):
                kind = base
                break
        return ("error", kind)


def make_token(app: Any, user: Any = None, *, value: str = "tok", x5t: str | None = None) -> Any:
    token = AccessToken.objects.create(
        user=user,
        application=app,
        token=value,
        expires=timezone.now() + dt.timedelta(hours=1),
        scope="read write",
        resource=["https://api.example/\u00e9"],
    )
    if x5t:
        AccessTokenBinding.objects.create(access_token=token, x5t_s256=x5t)
    return token


# --- inputs: a client_id the ORM and the prepared lookup must answer alike ------------------------


def client_id_variants(client_id: str) -> list[Any]:
    nfd = unicodedata.normalize("NFD", "caf\u00e9-" + client_id)
    return [
        client_id,
        client_id + " ",
        " " + client_id,
        client_id + "\t",
        client_id.upper(),
        client_id.lower(),
        client_id[:-1],
        client_id + "x" * 100_000,  # over varchar(255)
        "caf\u00e9-" + client_id,  # NFC, stored
        nfd,  # NFD: another string
        "%",
        "_" * len(client_id),
        client_id[:-1] + "_",
        client_id[:-1] + "%",
        "\\" + client_id,
        "' OR '1'='1",
        "\u212a" + client_id,  # KELVIN SIGN, upper() of nothing
        "\U0001f510" + client_id,
        "\ud800",  # a lone surrogate: not encodable
        "",
    ]


@pytest.fixture
def apps_for_variants(make_app: Any) -> Any:
    app = make_app(tls_client_auth_san_dns="client-one.example.com")
    other = make_app(None)
    Application.objects.filter(pk=other.pk).update(client_id="caf\u00e9-" + app.client_id)
    return app


def test_client_id_variants_answer_as_the_orm(apps_for_variants: Any) -> None:
    for value in client_id_variants(apps_for_variants.client_id):
        prepared = outcome(
            lambda value=value: application_view(APPLICATION_WITH_MTLS.first(Application, value))
        )
        expected = outcome(lambda value=value: application_view(orm_application(value)))
        assert prepared == expected, repr(value)[:80]


def test_checksum_variants_answer_as_the_orm(make_app: Any, user: Any) -> None:
    token = make_token(make_app(None), user, x5t=X5T_A)
    checksum = token.token_checksum
    for value in [
        checksum,
        checksum.upper(),
        checksum + " ",
        checksum[:-1],
        checksum[:-1] + "_",
        "%",
        "_" * 64,
        "0" * 64,
        checksum + "0" * 10_000,
        "",
    ]:
        prepared = outcome(
            lambda value=value: token_view(ACCESS_TOKEN_WITH_BINDING.first(AccessToken, value))
        )
        expected = outcome(lambda value=value: token_view(orm_token(value)))
        assert prepared == expected, value[:80]


@pytest.mark.parametrize("value", [None, 12345, b"client", ["x"], 1.5])
def test_values_that_are_not_strings_answer_as_the_orm(make_app: Any, value: Any) -> None:
    """Not a str: the queryset itself (a bytes or a list never reaches the compiled text)."""
    make_app(None)
    APPLICATION_WITH_MTLS.first(Application, "warm-up")  # compiled
    assert outcome(lambda: application_view(APPLICATION_WITH_MTLS.first(Application, value))) == (
        outcome(lambda: application_view(orm_application(value)))
    )


# --- stale data ----------------------------------------------------------------------------------


def test_every_change_is_seen_by_the_next_lookup(make_app: Any, user: Any) -> None:
    app = make_app(tls_client_auth_san_dns="client-one.example.com")
    token = make_token(app, user, x5t=X5T_A)
    checksum = token.token_checksum

    def same() -> None:
        assert token_view(ACCESS_TOKEN_WITH_BINDING.first(AccessToken, checksum)) == token_view(
            orm_token(checksum)
        )
        assert application_view(
            APPLICATION_WITH_MTLS.first(Application, app.client_id)
        ) == application_view(orm_application(app.client_id))

    same()
    AccessToken.objects.filter(pk=token.pk).update(expires=timezone.now() - dt.timedelta(seconds=1))
    assert ACCESS_TOKEN_WITH_BINDING.first(AccessToken, checksum).is_expired()
    same()
    AccessTokenBinding.objects.filter(access_token=token).update(x5t_s256=X5T_B)
    assert ACCESS_TOKEN_WITH_BINDING.first(AccessToken, checksum).mtls_binding.x5t_s256 == X5T_B
    same()
    AccessTokenBinding.objects.filter(access_token=token).delete()
    same()
    type(user).objects.filter(pk=user.pk).update(is_active=False)
    assert not ACCESS_TOKEN_WITH_BINDING.first(AccessToken, checksum).user.is_active
    MTLSClient.objects.filter(application=app).update(
        token_endpoint_auth_method="self_signed_tls_client_auth"
    )
    mtls = APPLICATION_WITH_MTLS.first(Application, app.client_id).mtls
    assert mtls.token_endpoint_auth_method == "self_signed_tls_client_auth"
    Application.objects.filter(pk=app.pk).update(client_type="public", skip_authorization=True)
    same()
    AccessToken.objects.filter(pk=token.pk).delete()  # revoked
    assert ACCESS_TOKEN_WITH_BINDING.first(AccessToken, checksum) is None
    same()


def test_savepoint_rollback_is_seen(make_app: Any) -> None:
    app = make_app(tls_client_auth_san_dns="client-one.example.com")
    with transaction.atomic():
        with pytest.raises(RuntimeError), transaction.atomic():
            MTLSClient.objects.filter(application=app).update(
                token_endpoint_auth_method="client_secret_basic"
            )
            assert not APPLICATION_WITH_MTLS.first(Application, app.client_id).mtls.is_mtls
            raise RuntimeError("rolled back")
        assert APPLICATION_WITH_MTLS.first(Application, app.client_id).mtls.is_mtls
        with pytest.raises(RuntimeError), transaction.atomic():
            token = make_token(app, x5t=X5T_A)
            checksum = token.token_checksum
            assert ACCESS_TOKEN_WITH_BINDING.first(AccessToken, checksum).mtls_binding
            raise RuntimeError("token rolled back")
        assert ACCESS_TOKEN_WITH_BINDING.first(AccessToken, checksum) is None


def test_a_broken_transaction_leaves_nothing_behind(make_app: Any) -> None:
    """After a refused lookup in a broken transaction and its rollback, the next one works."""
    app = make_app(tls_client_auth_san_dns="client-one.example.com")
    with transaction.atomic():
        with pytest.raises(IntegrityError):
            Application.objects.create(client_id=app.client_id, client_secret="x")
        with pytest.raises(TransactionManagementError):
            APPLICATION_WITH_MTLS.first(Application, app.client_id)
        with pytest.raises(TransactionManagementError):
            NEW_ACCESS_TOKEN_BINDING.insert(access_token_id=1, x5t_s256=X5T_A)
    assert APPLICATION_WITH_MTLS.first(Application, app.client_id).pk == app.pk


@pytest.mark.django_db(transaction=True)
def test_a_closed_connection_is_reopened(make_app: Any) -> None:
    """CONN_MAX_AGE=0 closes the connection after each request; close_all() between requests."""
    app = make_app(tls_client_auth_san_dns="client-one.example.com")
    token = make_token(app, x5t=X5T_A)
    for close in (connection.close, connections.close_all, connection.close):
        assert APPLICATION_WITH_MTLS.first(Application, app.client_id).pk == app.pk
        assert ACCESS_TOKEN_WITH_BINDING.first(AccessToken, token.token_checksum).mtls_binding
        close()
    other = make_token(app, value="other")
    NEW_ACCESS_TOKEN_BINDING.insert(access_token_id=other.pk, x5t_s256=X5T_B)
    connections.close_all()
    assert ACCESS_TOKEN_WITH_BINDING.first(AccessToken, other.token_checksum).mtls_binding


@pytest.mark.django_db(transaction=True)
def test_threads_do_not_mix_rows(make_app: Any) -> None:
    """gthread: threads looking up different clients and tokens at once get their own rows."""
    apps = [make_app(tls_client_auth_san_dns=f"c{i}.example.com") for i in range(4)]
    tokens = [
        make_token(app, value=f"t{i}", x5t=X5T_A if i % 2 else None) for i, app in enumerate(apps)
    ]
    errors: list[str] = []
    barrier = threading.Barrier(len(apps))

    def worker(i: int) -> None:
        try:
            barrier.wait(timeout=10)
            for _ in range(30):
                app = APPLICATION_WITH_MTLS.first(Application, apps[i].client_id)
                token = ACCESS_TOKEN_WITH_BINDING.first(AccessToken, tokens[i].token_checksum)
                if app.pk != apps[i].pk or app.mtls.tls_client_auth_san_dns != f"c{i}.example.com":
                    errors.append(f"thread {i}: application {app.pk}")
                if token.pk != tokens[i].pk or (x5t_s256_of(token) is None) != (i % 2 == 0):
                    errors.append(f"thread {i}: token {token.pk}")
        except Exception as error:  # noqa: BLE001
            errors.append(f"thread {i}: {error!r}")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(apps))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


# --- settings: time zones, routers ---------------------------------------------------------------


@pytest.mark.parametrize(
    "use_tz, time_zone", [(True, "America/New_York"), (False, "Asia/Kathmandu"), (False, "UTC")]
)
def test_time_zone_settings_changed_after_compiling(
    make_app: Any, settings: Any, use_tz: bool, time_zone: str
) -> None:
    app = make_app(tls_client_auth_san_dns="client-one.example.com")
    token = make_token(app, x5t=X5T_A)
    ACCESS_TOKEN_WITH_BINDING.first(AccessToken, token.token_checksum)  # compiled under UTC
    APPLICATION_WITH_MTLS.first(Application, app.client_id)
    settings.USE_TZ = use_tz
    settings.TIME_ZONE = time_zone
    prepared = ACCESS_TOKEN_WITH_BINDING.first(AccessToken, token.token_checksum)
    assert token_view(prepared) == token_view(orm_token(token.token_checksum))
    assert application_view(
        APPLICATION_WITH_MTLS.first(Application, app.client_id)
    ) == application_view(orm_application(app.client_id))
    assert timezone.is_aware(prepared.expires) == use_tz


class RecordingRouter:
    def __init__(self) -> None:
        self.calls: list[tuple[str, type[models.Model], dict[str, Any]]] = []

    def db_for_read(self, model: type[models.Model], **hints: Any) -> str | None:
        self.calls.append(("read", model, hints))
        return None

    def db_for_write(self, model: type[models.Model], **hints: Any) -> str | None:
        self.calls.append(("write", model, hints))
        return None


def test_the_router_is_asked_on_every_call(make_app: Any, settings: Any) -> None:
    """A pinning router (reads go to the primary after a write) decides per call."""
    app = make_app(None)
    token = make_token(app)
    recorder = RecordingRouter()
    settings.DATABASE_ROUTERS = [recorder]
    for _ in range(2):
        APPLICATION_WITH_MTLS.first(Application, app.client_id)
        ACCESS_TOKEN_WITH_BINDING.first(AccessToken, token.token_checksum)
    NEW_ACCESS_TOKEN_BINDING.insert(access_token_id=token.pk, x5t_s256=X5T_A)
    asked = [(kind, model) for kind, model, _hints in recorder.calls]
    assert asked.count(("read", Application)) == 2
    assert asked.count(("read", AccessToken)) == 2
    assert ("write", AccessTokenBinding) in asked


def test_a_router_to_an_unknown_alias_fails_as_the_orm(make_app: Any, settings: Any) -> None:
    app = make_app(None)

    class Elsewhere:
        def db_for_read(self, model: Any, **hints: Any) -> str:
            return "replica-that-does-not-exist"

    settings.DATABASE_ROUTERS = [Elsewhere()]
    assert outcome(lambda: APPLICATION_WITH_MTLS.first(Application, app.client_id)) == outcome(
        lambda: orm_application(app.client_id)
    )


# --- Django 6.1 fetch modes ----------------------------------------------------------------------


@pytest.mark.skipif(django.VERSION < (6, 1), reason="fetch modes are Django 6.1")
def test_a_fetch_mode_that_tracks_peers_uses_the_queryset(make_app: Any) -> None:
    from django.db.models import FETCH_PEERS

    lookup = PreparedLookup(
        lambda model, value: (
            model._default_manager.fetch_mode(FETCH_PEERS)
            .select_related("mtls")
            .filter(client_id=value)
        )
    )
    app = make_app(tls_client_auth_san_dns="client-one.example.com")
    found = lookup.first(Application, app.client_id)
    assert prepared_module._compiled_on(connections["default"])[(lookup, Application)] is (
        prepared_module._FALLBACK
    )
    assert found._state.fetch_mode is FETCH_PEERS and found.mtls.is_mtls


# --- the binding INSERT --------------------------------------------------------------------------


def test_the_binding_insert_writes_what_model_save_writes(make_app: Any) -> None:
    app = make_app(None)
    first, second = make_token(app, value="one"), make_token(app, value="two")
    NEW_ACCESS_TOKEN_BINDING.insert(access_token_id=first.pk, x5t_s256=X5T_A)
    AccessTokenBinding.objects.create(access_token=second, x5t_s256=X5T_A)
    rows = {
        row.pop("access_token_id"): row
        for row in AccessTokenBinding.objects.filter(access_token__in=[first, second]).values()
    }
    assert rows[first.pk] == rows[second.pk] == {"x5t_s256": X5T_A}


def test_the_binding_rolls_back_with_a_failed_token_request(
    client: Any, make_app: Any, mtls_settings: Any, client_cert: Any, monkeypatch: Any
) -> None:
    """A failure after the binding INSERT, inside DOT's save_bearer_token, leaves neither row."""
    from django_oauth_mtls.oauth2_validators import MTLSValidatorMixin

    app = make_app(
        tls_client_auth_san_dns="client-one.example.com",
        tls_client_certificate_bound_access_tokens=True,
    )
    original = MTLSValidatorMixin._create_access_token

    def then_fail(self: Any, *args: Any, **kwargs: Any) -> Any:
        token = original(self, *args, **kwargs)
        assert AccessTokenBinding.objects.filter(access_token_id=token.pk).exists()
        raise DatabaseError("after the binding")

    monkeypatch.setattr(MTLSValidatorMixin, "_create_access_token", then_fail)
    with pytest.raises(DatabaseError):
        token_request(client, app, client_cert)
    assert not AccessToken.objects.filter(application=app).exists()
    assert not AccessTokenBinding.objects.exists()


# --- findings ------------------------------------------------------------------------------------
#
# Each test below fails today and passes once the fix named in its docstring is applied.


def test_failed_binding_insert_dooms_the_transaction_as_model_save_does(
    make_app: Any,
) -> None:
    """Found by the attack review, now fixed: ``Model.save`` runs its INSERT under ``transaction.mark_for_rollback_on_error``:
    when it fails inside an atomic block, the block can only roll back, even if a caller catches
    the error. ``PreparedInsert.insert`` runs a bare cursor: a caught IntegrityError (or any
    error) leaves the transaction committable, and on SQLite the access token it was binding is
    committed without its binding: a bound token turned bearer.

    Fix: ``with transaction.mark_for_rollback_on_error(using=db), connection.cursor() as c:``
    around the execute in ``PreparedInsert.insert``."""
    app = make_app(None)
    token = make_token(app, x5t=X5T_A)

    def attempt(write: Any) -> bool:
        with transaction.atomic():
            # A caller that catches the error (a project's validator subclass, a retry).
            with contextlib.suppress(IntegrityError):
                write()
            doomed = transaction.get_rollback()
            transaction.set_rollback(True)  # keep the test's own transaction usable
        return doomed

    orm_doomed = attempt(
        lambda: AccessTokenBinding.objects.create(access_token=token, x5t_s256=X5T_B)
    )
    assert orm_doomed  # what Model.save guarantees
    assert attempt(
        lambda: NEW_ACCESS_TOKEN_BINDING.insert(access_token_id=token.pk, x5t_s256=X5T_B)
    )


@pytest.mark.parametrize("which", ["application", "access token"])
def test_the_lookups_read_the_manager_dot_reads(make_app: Any, which: str) -> None:
    """Found by the attack review, now fixed: the lookups are built on ``model._default_manager``; the code they replaced (and
    DOT's own ``_load_application`` / ``_load_access_token``) reads ``Model.objects``. On a
    swapped model whose ``objects`` hides rows (soft-deleted applications, revoked tokens) while
    an unfiltered manager is the default one (``Meta.default_manager_name``, or declared first,
    as Django's docs advise for a default manager), ``_plain_manager`` passes and the prepared
    lookup returns the hidden row: DOT then reuses ``request.client`` (a deleted client
    authenticates) and a token ``objects`` hides is accepted at a resource.

    Fix: build both lookups on ``model.objects`` (``getattr(model, "objects")`` for mypy), and
    have ``_plain_manager`` check that manager (the one the lookup reads), not
    ``_default_manager``."""
    with isolate_apps("django_oauth_mtls"):

        class Visible(models.Manager):  # type: ignore[type-arg]
            def get_queryset(self) -> Any:
                return super().get_queryset().exclude(**{hidden_field: hidden_value})

        if which == "application":
            hidden_field, hidden_value = "name", "deleted"

            class SoftApplication(Application):  # type: ignore[misc, valid-type]
                all_objects = models.Manager()  # the default manager: unfiltered
                objects = Visible()

                class Meta:
                    proxy = True
                    app_label = "django_oauth_mtls"

            model: Any = SoftApplication
            lookup, key = APPLICATION_WITH_MTLS, "client_id"
            row = make_app(tls_client_auth_san_dns="client-one.example.com")
            Application.objects.filter(pk=row.pk).update(name="deleted")
            build = lambda value: model.objects.select_related("mtls").filter(client_id=value)  # noqa: E731
        else:
            hidden_field, hidden_value = "scope", "revoked"

            class SoftToken(AccessToken):  # type: ignore[misc, valid-type]
                all_objects = models.Manager()
                objects = Visible()

                class Meta:
                    proxy = True
                    app_label = "django_oauth_mtls"

            model = SoftToken
            lookup, key = ACCESS_TOKEN_WITH_BINDING, "token_checksum"
            row = make_token(make_app(None), x5t=X5T_A)
            AccessToken.objects.filter(pk=row.pk).update(scope="revoked")
            build = lambda value: model.objects.select_related(  # noqa: E731
                "application", "user", "mtls_binding"
            ).filter(token_checksum=value)

        value = getattr(row, key)
        assert model._default_manager is model.all_objects
        assert build(value).first() is None  # what DOT's Model.objects answers
        assert lookup.first(model, value) is None


def test_the_issued_token_carries_its_binding(
    client: Any, make_app: Any, mtls_settings: Any, client_cert: Any
) -> None:
    """Found by the attack review, now fixed: ``AccessTokenBinding.objects.create(access_token=token, ...)`` (the code the
    prepared INSERT replaced) also set ``token.mtls_binding``: the token object the validator
    hands to ``app_authorized`` (``note_issued``) knew its binding without a query. With the
    prepared INSERT it does not: every ``x5t_s256_of(token)`` / ``binding_of(token)`` on it reads
    the database, and with a read-replica router (``db_for_read``) that read goes to a replica
    that may not have the row yet: a receiver sees a bound token as unbound.

    Fix: after the INSERT, set the reverse one-to-one cache: build
    ``AccessTokenBinding(access_token=access_token, x5t_s256=x5t)`` (its constructor caches it
    on the token), set ``_state.adding = False`` and ``_state.db = db``; or
    ``AccessTokenBinding._meta.get_field("access_token").remote_field.set_cached_value(...)``."""
    app = make_app(
        tls_client_auth_san_dns="client-one.example.com",
        tls_client_certificate_bound_access_tokens=True,
    )
    seen: list[tuple[Any, int]] = []

    def receiver(sender: Any, request: Any, token: Any, **kwargs: Any) -> None:
        with CaptureQueriesContext(connection) as queries:
            seen.append((x5t_s256_of(token), len(queries)))

    app_authorized.connect(receiver, weak=False, dispatch_uid="prepared-attack")
    try:
        response = token_request(client, app, client_cert)
    finally:
        app_authorized.disconnect(dispatch_uid="prepared-attack")
    assert response.status_code == 200, response.content
    assert seen == [(client_cert.x5t_s256, 0)]


def test_a_second_parameter_is_not_frozen(make_app: Any) -> None:
    """Found by the attack review (latent), now fixed: ``_Compiled`` accepts a query with parameters besides the value and
    re-sends the values they had when it compiled. A lookup that filters on anything computed
    per request (``expires__gt=timezone.now()``, a tenant, a flag from settings) keeps the
    first request's value for the life of the connection: an expired token stays valid.

    Fix: prepare only a query whose parameters are exactly ``[value]``
    (``len(params) != 1`` → fall back to the queryset)."""
    clock = [timezone.now()]
    lookup = PreparedLookup(
        lambda model, value: model._default_manager.filter(
            token_checksum=value, expires__gt=clock[0]
        )
    )
    token = make_token(make_app(None))
    assert lookup.first(AccessToken, token.token_checksum) is not None
    clock[0] += dt.timedelta(hours=2)  # the token has expired
    assert (
        AccessToken.objects.filter(
            token_checksum=token.token_checksum, expires__gt=clock[0]
        ).first()
        is None
    )
    assert lookup.first(AccessToken, token.token_checksum) is None


def test_a_value_the_lookup_rewrites_is_not_sent_raw(make_app: Any) -> None:
    """Found by the attack review (latent), now fixed: ``_Compiled`` checks only that the lookup left *the sentinel*
    unchanged, then sends every later value raw. A lookup that rewrites its value (``iexact``
    escapes ``%``, ``_`` and ``\\`` for ``LIKE`` on SQLite, MySQL, Oracle; a field whose
    ``get_prep_value`` lowercases or strips) compiles — the sentinel has none of those
    characters — and then a client_id ``%`` matches the first application (a wildcard
    injection); on PostgreSQL ``iexact`` does not use LIKE and the answers agree.

    Fix: compile with two probe values the lookup must pass through unchanged, one of them with
    upper case, ``%``, ``_``, ``\\`` and surrounding spaces (e.g. ``"\\x00 Probe%_\\\\ \\x00"``),
    and fall back otherwise; or run ``field.get_db_prep_value`` / the lookup's own
    ``get_db_prep_lookup`` on each value."""
    lookup = PreparedLookup(
        lambda model, value: model._default_manager.filter(client_id__iexact=value)
    )
    app = make_app(None)
    lookup.first(Application, app.client_id)  # compiled
    for value in ["%", "_" * len(app.client_id), app.client_id[:-1] + "_", app.client_id.upper()]:
        expected = Application.objects.filter(client_id__iexact=value).first()
        found = lookup.first(Application, value)
        assert (found and found.pk) == (expected and expected.pk), value


# --- swapped Application -------------------------------------------------------------------------

PARITY = "variants or every_change or time_zone_settings or savepoint or closed_connection"


def test_parity_under_a_swapped_application() -> None:
    """The parity tests above, in a subprocess under ``tests.settings_swapped``."""
    if getattr(django_settings, "OAUTH2_PROVIDER_APPLICATION_MODEL", None):
        pytest.skip("already under a swapped Application")
    result = run_pytest_swapped("-k", PARITY, str(Path(__file__).relative_to(ROOT)), timeout=120)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "failed" not in result.stdout, result.stdout[-2000:]
