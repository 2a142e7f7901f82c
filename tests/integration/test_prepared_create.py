"""Issue 16: the access-token row written by one prepared ``INSERT`` (``PreparedCreate``,
``django_oauth_mtls.access_tokens``) must be exactly what DOT's ``_create_access_token`` and
``Model.save`` write, with the same signals, and must give way to any code that customises
either.

Each test compares with DOT's own path, reached through a validator that puts an override of
``_create_access_token`` between our mixin and DOT's class (so ``super()`` runs DOT's method).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
from typing import Any

import pytest
from django.db import IntegrityError, connection, connections, models, transaction
from django.db.models import Value, signals
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, get_refresh_token_model
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauthlib.common import Request

import django_oauth_mtls.prepared as prepared_module
from django_oauth_mtls import access_tokens
from django_oauth_mtls.oauth2_validators import MTLSOAuth2Validator, MTLSValidatorMixin
from tests.integration.conftest import token_request

pytestmark = pytest.mark.django_db

AccessToken = get_access_token_model()
RefreshToken = get_refresh_token_model()
TOKEN_TABLE = AccessToken._meta.db_table


class OverridingValidator(OAuth2Validator):
    """A project's validator that customises token creation (here: only calls DOT's)."""

    calls = 0

    def _create_access_token(self, *args: Any, **kwargs: Any) -> Any:
        OverridingValidator.calls += 1
        return super()._create_access_token(*args, **kwargs)


class ThroughDOT(MTLSValidatorMixin, OverridingValidator):  # type: ignore[misc]
    """Our mixin in front of that validator: DOT's own ``_create_access_token`` runs."""


class InFront(MTLSOAuth2Validator):
    """A class in front of the mixin: its override calls ours, the prepared path still runs."""

    calls = 0

    def _create_access_token(self, *args: Any, **kwargs: Any) -> Any:
        InFront.calls += 1
        return super()._create_access_token(*args, **kwargs)


@pytest.fixture(autouse=True)
def _fresh_decisions() -> Any:
    access_tokens._repeated_here.cache_clear()
    prepared_module._compiled_on(connections["default"]).pop(
        (access_tokens.NEW_ACCESS_TOKEN, AccessToken), None
    )
    OverridingValidator.calls = InFront.calls = 0
    yield
    access_tokens._repeated_here.cache_clear()


def oauthlib_request(app: Any, user: Any, resource: list[str] | None = None) -> Any:
    request = Request("https://as.example/o/token/", http_method="POST")
    request.user, request.client, request.grant_type = user, app, "client_credentials"
    if resource is not None:
        request.resource = resource
    return request


def create(validator_class: type, app: Any, user: Any, value: str, **extra: Any) -> Any:
    """One access token through ``validator_class._create_access_token``, in a transaction as
    DOT's ``save_bearer_token`` runs it."""
    expires = timezone.now() + dt.timedelta(hours=1)
    token = {"access_token": value, "scope": "read write", **extra.pop("token", {})}
    with transaction.atomic():
        return validator_class()._create_access_token(
            expires, oauthlib_request(app, user, **extra), token
        )


def row(instance: Any) -> dict[str, Any]:
    values = AccessToken.objects.filter(pk=instance.pk).values().get()
    for name in ("id", "created", "updated", "expires"):
        assert values.pop(name) is not None
    return values


def in_memory(instance: Any) -> dict[str, Any]:
    values = {f.attname: getattr(instance, f.attname) for f in AccessToken._meta.concrete_fields}
    values.update(adding=instance._state.adding, db=instance._state.db)
    return values


# --- which path runs ----------------------------------------------------------------------------


def test_the_token_endpoint_writes_the_token_with_one_prepared_insert(
    client: Any, make_app: Any, mtls_settings: Any, client_cert: Any
) -> None:
    app = make_app(tls_client_auth_san_dns="client-one.example.com")
    with CaptureQueriesContext(connection) as queries:
        response = token_request(client, app, client_cert)
    assert response.status_code == 200, response.content
    inserts = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("INSERT")]
    token_inserts = [sql for sql in inserts if f'"{TOKEN_TABLE}"' in sql.split("(")[0]]
    assert len(token_inserts) == 1 and "RETURNING" in token_inserts[0], inserts
    compiled = prepared_module._compiled_on(connections["default"])[
        (access_tokens.NEW_ACCESS_TOKEN, AccessToken)
    ]
    assert compiled is not prepared_module._FALLBACK
    stored = AccessToken.objects.get(application=app)
    assert stored.token == response.json()["access_token"]
    assert stored.token_checksum == hashlib.sha256(stored.token.encode()).hexdigest()


def test_an_override_between_the_mixin_and_dot_runs_and_dot_saves(make_app: Any) -> None:
    app = make_app(None)
    assert not access_tokens.dot_creates_access_tokens(ThroughDOT, MTLSValidatorMixin)
    saved = create(ThroughDOT, app, None, "through-dot")
    assert OverridingValidator.calls == 1
    assert AccessToken.objects.filter(pk=saved.pk, token="through-dot").exists()


def test_an_override_in_front_of_the_mixin_still_gets_the_prepared_insert(make_app: Any) -> None:
    app = make_app(None)
    assert access_tokens.dot_creates_access_tokens(InFront, MTLSValidatorMixin)
    with CaptureQueriesContext(connection) as queries:
        create(InFront, app, None, "in-front")
    assert InFront.calls == 1
    assert any("RETURNING" in q["sql"] for q in queries.captured_queries)


def test_a_dot_whose_method_changed_runs_its_own(make_app: Any, monkeypatch: Any) -> None:
    """The copy repeats DOT 3.4.1's method: a DOT whose method has other source text (another
    release, a fork) may write more, so its method runs."""
    assert access_tokens.dot_creates_access_tokens(MTLSOAuth2Validator, MTLSValidatorMixin)
    monkeypatch.setattr(access_tokens, "_REPEATED_SOURCE_SHA256", "0" * 64)
    access_tokens._repeated_here.cache_clear()
    assert not access_tokens.dot_creates_access_tokens(MTLSOAuth2Validator, MTLSValidatorMixin)
    with CaptureQueriesContext(connection):
        saved = create(MTLSOAuth2Validator, make_app(None), None, "changed")
    assert (access_tokens.NEW_ACCESS_TOKEN, AccessToken) not in prepared_module._compiled_on(
        connections["default"]
    )
    assert AccessToken.objects.filter(pk=saved.pk, token="changed").exists()


# --- the same row, the same instance ------------------------------------------------------------


@pytest.mark.parametrize("redact", [False, True], ids=["plaintext", "rfc9700-redacted"])
@pytest.mark.parametrize("resource", [None, [], ["https://api.example/"]])
def test_the_row_and_instance_equal_dots(
    make_app: Any, user: Any, settings: Any, redact: bool, resource: Any
) -> None:
    settings.OAUTH2_PROVIDER = {
        **settings.OAUTH2_PROVIDER,
        "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": redact,
    }
    app = make_app(None)
    prepared = create(MTLSOAuth2Validator, app, user, "value-one", resource=resource)
    dots = create(ThroughDOT, app, user, "value-two", resource=resource)
    assert OverridingValidator.calls == 1
    ours_row, dots_row = row(prepared), row(dots)
    for values, raw in ((ours_row, "value-one"), (dots_row, "value-two")):
        assert values.pop("token_checksum") == hashlib.sha256(raw.encode()).hexdigest()
        assert values.pop("token") == ("" if redact else raw)
    assert ours_row == dots_row
    ours_memory, dots_memory = in_memory(prepared), in_memory(dots)
    for values in (ours_memory, dots_memory):
        for name in ("id", "token", "token_checksum", "created", "updated", "expires"):
            assert values.pop(name) or name == "token"
    assert ours_memory == dots_memory
    # auto_now_add and auto_now set at the INSERT, as Model.save sets them
    assert prepared.created <= prepared.updated <= dots.created <= timezone.now()
    assert getattr(prepared, "_raw_token", None) is None  # DOT clears the raw value at save
    fresh = AccessToken.objects.get(pk=prepared.pk)
    assert (fresh.created, fresh.updated, fresh.expires) == (
        prepared.created,
        prepared.updated,
        prepared.expires,
    )


def test_a_refresh_sets_the_source_refresh_token_as_dot_does(make_app: Any, user: Any) -> None:
    app = make_app(None)
    first = create(MTLSOAuth2Validator, app, user, "first")
    refresh = RefreshToken.objects.create(
        user=user, application=app, token="rt", access_token=first
    )
    expires = timezone.now() + dt.timedelta(hours=1)
    with transaction.atomic():
        second = MTLSOAuth2Validator()._create_access_token(
            expires,
            oauthlib_request(app, user),
            {"access_token": "second", "scope": "read"},
            source_refresh_token=refresh,
        )
    assert AccessToken.objects.get(pk=second.pk).source_refresh_token_id == refresh.pk


# --- signals ------------------------------------------------------------------------------------


@contextlib.contextmanager
def recording_signals() -> Any:
    seen: list[tuple[str, dict[str, Any]]] = []

    def pre(sender: Any, instance: Any, **kwargs: Any) -> None:
        seen.append(("pre_save", {**kwargs, "pk": instance.pk, "adding": instance._state.adding}))

    def post(sender: Any, instance: Any, **kwargs: Any) -> None:
        stored = AccessToken.objects.filter(pk=instance.pk).exists()
        seen.append(
            (
                "post_save",
                {**kwargs, "pk": instance.pk, "adding": instance._state.adding, "stored": stored},
            )
        )

    signals.pre_save.connect(pre, sender=AccessToken, weak=False, dispatch_uid="rec-pre")
    signals.post_save.connect(post, sender=AccessToken, weak=False, dispatch_uid="rec-post")
    try:
        yield seen
    finally:
        signals.pre_save.disconnect(sender=AccessToken, dispatch_uid="rec-pre")
        signals.post_save.disconnect(sender=AccessToken, dispatch_uid="rec-post")


def normalised(seen: list[tuple[str, dict[str, Any]]]) -> list[Any]:
    out = []
    for name, kwargs in seen:
        kwargs = dict(kwargs)
        kwargs.pop("signal")
        assert (kwargs.pop("pk") is None) == (name == "pre_save")
        out.append((name, kwargs))
    return out


def test_pre_save_and_post_save_are_sent_as_model_save_sends_them(make_app: Any) -> None:
    app = make_app(None)
    with recording_signals() as ours:
        create(MTLSOAuth2Validator, app, None, "signals-ours")
    with recording_signals() as dots:
        create(ThroughDOT, app, None, "signals-dot")
    assert normalised(ours) == normalised(dots)
    assert [name for name, _ in ours] == ["pre_save", "post_save"]
    assert ours[1][1]["created"] is True and ours[1][1]["stored"] is True
    assert ours[1][1]["adding"] is False and ours[0][1]["adding"] is True


def test_a_pre_save_receiver_that_sets_an_expression_is_honoured(make_app: Any) -> None:
    """The ORM's own INSERT then writes the row: the expression is evaluated, not sent raw,
    and the signal is not sent twice."""
    app = make_app(None)
    sent: list[str] = []

    def to_expression(sender: Any, instance: Any, **kwargs: Any) -> None:
        sent.append("pre_save")
        instance.scope = Value("from-a-receiver")

    signals.pre_save.connect(to_expression, sender=AccessToken, weak=False, dispatch_uid="expr")
    try:
        saved = create(MTLSOAuth2Validator, app, None, "expression")
    finally:
        signals.pre_save.disconnect(sender=AccessToken, dispatch_uid="expr")
    assert sent == ["pre_save"]
    stored = AccessToken.objects.get(pk=saved.pk)
    assert stored.scope == "from-a-receiver"
    assert stored.token_checksum == hashlib.sha256(b"expression").hexdigest()


# --- when it must not be used -------------------------------------------------------------------


def customised_save(monkeypatch: Any) -> list[Any]:
    """``AccessToken.save`` overridden (it records the instance, then saves it)."""
    calls: list[Any] = []

    def save(self: Any, *args: Any, **kwargs: Any) -> None:
        calls.append(self)
        models.Model.save(self, *args, **kwargs)

    monkeypatch.setattr(AccessToken, "save", save)
    return calls


def test_a_customised_save_is_called(make_app: Any, monkeypatch: Any) -> None:
    calls = customised_save(monkeypatch)
    saved = create(MTLSOAuth2Validator, make_app(None), None, "custom-save")
    assert calls == [saved]
    compiled = prepared_module._compiled_on(connections["default"])
    assert (access_tokens.NEW_ACCESS_TOKEN, AccessToken) not in compiled  # not even compiled


def test_an_instance_with_a_primary_key_or_an_expression_is_saved_by_the_orm(make_app: Any) -> None:
    app = make_app(None)
    existing = create(MTLSOAuth2Validator, app, None, "existing")
    existing.scope = "changed"
    access_tokens.NEW_ACCESS_TOKEN.save_new(existing)  # an UPDATE, as Model.save would do
    assert AccessToken.objects.filter(application=app).count() == 1
    assert AccessToken.objects.get(pk=existing.pk).scope == "changed"
    fresh = AccessToken(
        application=app, token="expr", expires=timezone.now(), scope=Value("literal")
    )
    access_tokens.NEW_ACCESS_TOKEN.save_new(fresh)
    assert AccessToken.objects.get(pk=fresh.pk).scope == "literal"


def test_a_failed_insert_dooms_the_transaction_as_model_save_does(make_app: Any) -> None:
    """A duplicate checksum (IntegrityError) that a caller catches still leaves the atomic
    block able only to roll back: nothing half-written commits."""
    app = make_app(None)
    create(MTLSOAuth2Validator, app, None, "duplicate")

    def attempt(write: Any) -> bool:
        with transaction.atomic():
            with contextlib.suppress(IntegrityError):
                write()
            doomed = transaction.get_rollback()
            transaction.set_rollback(True)
        return doomed

    def duplicate() -> Any:
        return AccessToken(application=app, token="duplicate", expires=timezone.now())

    assert attempt(lambda: duplicate().save())  # what Model.save guarantees
    assert attempt(lambda: access_tokens.NEW_ACCESS_TOKEN.save_new(duplicate()))
