"""Attack review of the prepared access-token INSERT (issue #16, commit 1ae5baa):
``PreparedCreate.save_new`` and ``access_tokens.create_access_token`` against what DOT's
``_create_access_token`` and ``Model.save()`` do.

Each test failed at 1ae5baa and passes with the fix its docstring names (all applied). Each
compares the prepared path with DOT's own path (``ThroughDOT``: an override between our mixin
and DOT, so ``super()`` runs DOT's method and ``Model.save``). Runs on SQLite and PostgreSQL
(``DATABASE_URL``), Django 5.2 and 6.1.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from typing import Any

import pytest
from django.db import connections, transaction
from django.db.models import signals
from django.db.models.sql.compiler import SQLInsertCompiler
from django.utils import timezone
from oauth2_provider.models import get_access_token_model
from oauth2_provider.oauth2_validators import OAuth2Validator

import django_oauth_mtls.prepared as prepared_module
from django_oauth_mtls import access_tokens
from django_oauth_mtls.oauth2_validators import MTLSOAuth2Validator
from tests.integration.test_prepared_create import (
    OverridingValidator,
    ThroughDOT,
    create,
    customised_save,
    oauthlib_request,
)

pytestmark = pytest.mark.django_db

AccessToken = get_access_token_model()


def _forget_compiled() -> None:
    for alias in connections:
        prepared_module._compiled_on(connections[alias]).pop(
            (access_tokens.NEW_ACCESS_TOKEN, AccessToken), None
        )


@pytest.fixture(autouse=True)
def _fresh_decisions() -> Any:
    access_tokens._repeated_here.cache_clear()
    _forget_compiled()
    OverridingValidator.calls = 0
    yield
    access_tokens._repeated_here.cache_clear()
    _forget_compiled()


@contextlib.contextmanager
def receiver(signal: Any, function: Any) -> Any:
    signal.connect(function, sender=AccessToken, weak=False, dispatch_uid="review")
    try:
        yield
    finally:
        signal.disconnect(sender=AccessToken, dispatch_uid="review")


def wrap_dots_method(monkeypatch: Any, label: str) -> list[str]:
    """DOT's ``_create_access_token`` wrapped (as an auditing library would); the wrapper
    records ``label`` and calls DOT's method."""
    original = OAuth2Validator._create_access_token
    calls: list[str] = []

    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(label)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(OAuth2Validator, "_create_access_token", wrapper)
    return calls


# --- 1. which method creates the token: decided once, against a snapshot -------------------------


def test_a_patch_of_dots_method_made_before_our_import_still_runs(
    make_app: Any, monkeypatch: Any
) -> None:
    """Finding 1a (medium): ``_DOT_METHOD`` is ``OAuth2Validator._create_access_token`` *as it
    is when ``access_tokens`` is first imported*, and that import is lazy (DOT loads
    ``OAUTH2_VALIDATOR_CLASS`` at the first token request, after every ``AppConfig.ready``). A
    project or an instrumentation library that wraps DOT's method in ``ready()`` (auditing,
    tracing, an extra claim check) is what ``_DOT_METHOD`` then holds: ``method is _DOT_METHOD``
    is true and the copy runs *instead of* the wrapper, which ``super()`` used to call. The same
    holds for a DOT 3.4.x build whose method was changed (a fork, a patch release): only the
    version prefix "3.4." is checked.

    Here the state after such an import is reproduced: the wrapper is DOT's attribute and the
    snapshot.

    Fix: recognise DOT's own function by what it is, not by identity with an import-time
    snapshot, e.g. ``method.__qualname__ == "OAuth2Validator._create_access_token"``,
    ``method.__code__.co_filename == dot_validators.__file__``, no ``__wrapped__``, and the hash
    of ``inspect.getsource(method)`` equal to DOT 3.4.1's (which also replaces the version
    prefix); anything else runs ``super()._create_access_token``."""
    calls = wrap_dots_method(monkeypatch, "audit")
    saved = create(MTLSOAuth2Validator, make_app(None), None, "patched-in-ready")
    assert AccessToken.objects.filter(pk=saved.pk).exists()
    assert calls == ["audit"], "the project's wrapper of DOT's method was skipped"


def test_a_patch_of_dots_method_made_after_the_first_token_still_runs(
    make_app: Any, monkeypatch: Any
) -> None:
    """Finding 1b (low-medium): ``dot_creates_access_tokens`` is ``lru_cache``d per validator
    class for the life of the process. After the first token, a later wrapper or
    ``mock.patch.object(OAuth2Validator, "_create_access_token", ...)`` (common in a project's
    own tests, e.g. to simulate a database error at issuance) is never called: the copy keeps
    running. Before the change ``super()`` looked the method up on every call.

    Fix: walk the MRO on every call (a handful of ``vars()`` lookups, negligible next to the
    INSERT) and cache, if at all, only the verdict per function object
    (``lru_cache`` on ``_is_dots_own(method)``), not per class."""
    app = make_app(None)
    create(MTLSOAuth2Validator, app, None, "first")  # caches "DOT's own method"
    calls = wrap_dots_method(monkeypatch, "patched")
    create(MTLSOAuth2Validator, app, None, "second")
    assert calls == ["patched"], "a patch of DOT's method made after the first token is ignored"


# --- 2. the model's save path: decided once per connection ---------------------------------------


def test_a_save_customised_after_the_first_token_is_called(make_app: Any, monkeypatch: Any) -> None:
    """Finding 2 (low): whether ``AccessToken`` customises ``save``/``save_base``/... is decided
    at compile time and kept on the connection for its whole life (a persistent or test
    connection: the whole run). A ``save`` patched later (``mock.patch.object(AccessToken,
    "save", side_effect=DatabaseError)`` in a project's tests, a library that instruments model
    saving at runtime) is not called: the prepared INSERT still runs.

    Fix: keep only the SQL in the per-connection entry and check the save path on every call
    (five ``getattr`` identity tests), e.g. ``if _customised_save(model): instance.save();
    return`` before using ``compiled``."""
    app = make_app(None)
    create(MTLSOAuth2Validator, app, None, "compiled")  # compiles for this connection
    calls = customised_save(monkeypatch)
    saved = create(MTLSOAuth2Validator, app, None, "customised-later")
    assert calls == [saved], "a save customised after the first compile is bypassed"


# --- 3. Django 6.1: get_placeholder_sql ----------------------------------------------------------


def test_a_field_with_a_placeholder_hook_is_not_frozen(make_app: Any, monkeypatch: Any) -> None:
    """Finding 3 (medium for swapped token models, Django 6.1 only): ``_compile`` refuses fields
    with ``get_placeholder`` (Django 5.2's hook). Django 6.1 renamed the hook to
    ``get_placeholder_sql(value, compiler, connection) -> (sql, params)``; Django's own 6.1
    fields (``BinaryField``, ``ArrayField``, range and GIS fields) and any field written for 6.1
    define only that name, so the check lets them through. The compiled text then holds the
    placeholder computed for the *blank* instance's value, and every call sends
    ``get_db_prep_save`` values instead of the hook's params: a value-dependent placeholder
    (PostGIS's ``ST_Transform`` for another SRID, an encrypting field, NULL handling) is frozen
    or skipped and a different value is stored than ``Model.save`` stores.

    Here DOT's ``scope`` field gets a value-dependent placeholder (the 5.2 hook on 5.2, the 6.1
    hook on 6.1); ``Model.save`` stores ``UPPER(scope)``.

    Fix: ``if any(f.generated or f.has_db_default() or hasattr(f, "get_placeholder") or
    hasattr(f, "get_placeholder_sql") for f in fields): raise ValueError(...)``."""
    field = AccessToken._meta.get_field("scope")
    if "get_placeholder_sql" in SQLInsertCompiler.field_as_sql.__code__.co_varnames:  # 6.1

        def get_placeholder_sql(value: Any, compiler: Any, connection: Any) -> Any:
            return ("UPPER(%s)", (value,)) if value else ("%s", (value,))

        monkeypatch.setattr(field, "get_placeholder_sql", get_placeholder_sql, raising=False)
    else:

        def get_placeholder(value: Any, compiler: Any, connection: Any) -> str:
            return "UPPER(%s)" if value else "%s"

        monkeypatch.setattr(field, "get_placeholder", get_placeholder, raising=False)
    app = make_app(None)
    dots = create(ThroughDOT, app, None, "dot")
    ours = create(MTLSOAuth2Validator, app, None, "ours")
    assert OverridingValidator.calls == 1
    stored = dict(AccessToken.objects.filter(pk__in=[dots.pk, ours.pk]).values_list("pk", "scope"))
    assert stored[dots.pk] == "READ WRITE"
    assert stored[ours.pk] == stored[dots.pk], "the placeholder hook was bypassed"


# --- 4. a pre_save receiver that sets the primary key ---------------------------------------------


def test_a_pre_save_receiver_that_sets_the_primary_key_is_honoured(make_app: Any) -> None:
    """Finding 4 (low): ``_new_and_plain`` looks at the primary key *before* ``pre_save`` is
    sent, and the expression re-check after it covers field values only. A receiver that gives
    the new token a primary key (ids taken from elsewhere, a sharding scheme) is honoured by
    ``Model.save`` (an UPDATE of that row if it exists, else an INSERT with that id; ``created``
    follows); the prepared INSERT drops the key, writes a new row with a generated id and
    overwrites ``instance.pk``.

    Fix: after sending ``pre_save``, if ``instance.pk is not None`` (or any value is an
    expression) run ``updated = instance._save_table(cls=model, using=db)`` inside the
    rollback guard and send ``post_save`` with ``created=not updated``."""
    app = make_app(None)
    chosen = {"id": 900_000_001}

    def assign(sender: Any, instance: Any, **kwargs: Any) -> None:
        instance.pk = chosen["id"]

    with receiver(signals.pre_save, assign):
        dots = create(ThroughDOT, app, None, "dot")
        chosen["id"] = 500_000_000  # not the next id after the first (SQLite's max + 1)
        ours = create(MTLSOAuth2Validator, app, None, "ours")
    assert dots.pk == 900_000_001
    assert AccessToken.objects.filter(pk=900_000_001, token="dot").exists()
    assert ours.pk == 500_000_000, "the primary key set by a pre_save receiver was dropped"
    assert AccessToken.objects.filter(pk=500_000_000, token="ours").exists()


# --- 5. compiling constructs a phantom instance -------------------------------------------------


def test_compiling_constructs_no_instance(make_app: Any) -> None:
    """Finding 5 (low): ``_compile`` builds the statement from ``model()``: the first token on
    each connection sends ``pre_init``/``post_init`` for a blank ``AccessToken`` that
    ``Model.save`` never creates, and evaluates every field's ``default`` (a callable default of
    a swapped model, e.g. one drawing from a sequence or minting an id, runs once more). A
    ``post_init`` receiver (change tracking, auditing) sees an extra, never-saved token; if it
    raises, the compile silently falls back for the life of the connection.

    Fix: compile from a stand-in that is not a model instance, e.g.
    ``query.insert_values(fields, [types.SimpleNamespace(**dict.fromkeys(f.attname for f in
    fields))], raw=True)`` (raw reads the attributes only), or ``model.__new__(model)`` with
    ``__dict__`` filled."""
    app = make_app(None)
    expires = timezone.now() + dt.timedelta(hours=1)

    def count_inits(path: type) -> int:
        seen: list[Any] = []

        def post_init(sender: Any, instance: Any, **kwargs: Any) -> None:
            seen.append(instance)

        with receiver(signals.post_init, post_init), transaction.atomic():
            path()._create_access_token(
                expires,
                oauthlib_request(app, None),
                {"access_token": f"init-{path.__name__}", "scope": "read"},
            )
        return len(seen)

    assert count_inits(MTLSOAuth2Validator) == count_inits(ThroughDOT) == 1
