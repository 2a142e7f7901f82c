"""Hot lookups compiled once per database connection (issue #16, speed).

The token endpoint loads the client's application with its ``MTLSClient`` row, and a protected
resource loads the presented access token with its application, user and binding. Both are one
``SELECT`` by a unique column, and Django spent more time *compiling* that query (columns of
four models, joins, quoting) than running it: about 40 % of a ``tls_client_auth`` token
request in process. ``PreparedLookup`` compiles the queryset once per connection and model with
Django's own compiler, then runs the same SQL text with the new value and turns the rows into
instances with the same compiler, ``Model.from_db`` and ``select_related``'s populators, exactly
as ``QuerySet`` does.

Nothing but the SQL text is kept: every call runs the query, sees the row as it is now, and goes
through the connection's cursor (its execute wrappers, ``CaptureQueriesContext``, the broken
transaction guard). A lookup falls back to the ordinary queryset, for good, on a model whose
``objects`` manager (the one DOT reads) or queryset class is customised (its ``get_queryset``
may filter by request state that a compiled text would freeze), and on a query whose only
parameter is not the value exactly as given (a second parameter would be frozen; a lookup that
rewrites its value, as ``iexact`` escapes LIKE wildcards, would be bypassed).
"""

from __future__ import annotations

import logging
import types
from collections.abc import Callable
from typing import Any

from django.db import connections, models, router, transaction
from django.db.models import query as django_query
from django.db.models import signals

log = logging.getLogger("django_oauth_mtls.prepared")

#: Stands for the value while the query is compiled; never a real client_id or checksum (both
#: refuse NUL characters before a lookup). Upper case, LIKE wildcards, a backslash and spaces:
#: a lookup that rewrites its value (``iexact`` escapes wildcards, a field that strips or
#: lowercases) would change it, and such a query is not prepared (every later value would be
#: sent raw).
_SENTINEL = "\x00 django-oauth-mtls Prepared%_\\ \x00"
_FALLBACK = object()
#: Where a connection keeps its compiled statements: on the connection object itself (one per
#: thread), so they live and die with it — a thread that ends takes its entries along, and no
#: lock is needed. Bounded by the lookups of this module times the models they are used with.
_ATTRIBUTE = "_django_oauth_mtls_prepared"
#: What ``Model.save()`` runs for a new row; a model that overrides any of them is saved by it.
_SAVE_PATH = ("save", "save_base", "_save_parents", "_save_table", "_do_insert")
#: Field hooks that make a placeholder depend on the value (Django 5.2, Django 6.1).
_PLACEHOLDER_HOOKS = ("get_placeholder", "get_placeholder_sql")


def _compiled_on(connection: Any) -> dict[Any, Any]:
    cache: dict[Any, Any] = vars(connection).setdefault(_ATTRIBUTE, {})
    return cache


def _compiled(connection: Any, key: Any, compile: Callable[[], Any]) -> Any:
    """The connection's compiled form for ``key``; ``compile()`` (the form, or ``_FALLBACK``)
    the first time."""
    cache = _compiled_on(connection)
    found = cache.get(key)
    if found is None:
        found = cache[key] = compile()
    return found


def _insert_sql(model: type[models.Model], fields: list[Any], db: str, returning: Any) -> Any:
    """``(sql, compiler)``: Django's ``INSERT`` of one row of ``fields`` (``RETURNING`` the
    ``returning`` fields, if any), one parameter per field. Compiled from a stand-in, not a
    model instance (no ``pre_init``/``post_init``, no default runs; ``raw``: the compiler only
    reads its attributes). A field whose placeholder depends on its value is refused."""
    from django.db.models.sql import InsertQuery

    if any(hasattr(f, hook) for f in fields for hook in _PLACEHOLDER_HOOKS):
        raise ValueError("a field with a value-dependent placeholder")
    stand_in = types.SimpleNamespace(**dict.fromkeys(f.attname for f in fields))
    query = InsertQuery(model)
    query.insert_values(fields, [stand_in], raw=True)  # type: ignore[list-item]
    compiler = query.get_compiler(using=db)
    compiler.returning_fields = returning
    statements = compiler.as_sql()
    if len(statements) != 1 or len(statements[0][1]) != len(fields):
        raise ValueError("not one INSERT with one parameter per field")
    return statements[0][0], compiler


class _Compiled:
    __slots__ = (
        "sql",
        "compiler",
        "converters",
        "init_list",
        "start",
        "end",
        "populators",
        "from_db",
    )

    def __init__(self, queryset: models.QuerySet[Any], db: str) -> None:
        compiler = queryset.query.get_compiler(using=db)
        sql, params = compiler.as_sql()
        # Exactly one parameter, the value unchanged: any other parameter (a time, a flag) would
        # be frozen at its first value for the life of the connection.
        if list(params) != [_SENTINEL] or compiler.annotation_col_map or not sql:
            raise ValueError("the lookup does not compile to exactly one parameter, the value")
        self.sql = sql  # run with [value]: the value is its one parameter
        self.compiler = compiler
        select, klass_info = compiler.select, compiler.klass_info
        fields = [column[0] for column in select[: compiler.col_count]]
        composite = getattr(compiler, "has_composite_fields", None)
        if composite is not None and composite(fields):
            raise ValueError("composite fields")
        # What ``results_iter`` computes on every call: the backend's and the fields'
        # converters (datetimes, JSON, booleans), for this connection.
        self.converters = compiler.get_converters(fields)
        select_fields = klass_info["select_fields"]
        self.start, self.end = select_fields[0], select_fields[-1] + 1
        self.init_list = [column[0].target.attname for column in select[self.start : self.end]]
        self.populators, self.from_db = _instantiation(queryset, klass_info, select, db)


def _instantiation(
    queryset: models.QuerySet[Any], klass_info: dict[str, Any], select: Any, db: str
) -> tuple[list[Any], Callable[..., Any]]:
    """``select_related``'s populators and ``from_db`` as ``ModelIterable`` builds them: Django
    6.1 adds the queryset's fetch mode to both."""
    model = klass_info["model"]
    populators: Any = django_query.get_related_populators
    fetch_mode = getattr(queryset, "_fetch_mode", None)
    if fetch_mode is None:  # Django < 6.1
        return populators(klass_info, select, db), model.from_db
    if getattr(fetch_mode, "track_peers", False):
        raise ValueError("a fetch mode that tracks peers")
    from_db = django_query._get_from_db(model, fetch_mode)  # type: ignore[attr-defined]
    return populators(klass_info, select, db, fetch_mode), from_db


def objects_manager(model: type[models.Model]) -> Any:
    """``Model.objects``: the manager DOT's own lookups read (not ``_default_manager``: a
    swapped model may make an unfiltered manager its default and hide rows in ``objects``)."""
    return model.objects  # type: ignore[attr-defined]


def _plain_manager(model: type[models.Model]) -> bool:
    manager: Any = getattr(model, "objects", None)
    return (
        isinstance(manager, models.Manager)
        and type(manager).get_queryset is models.Manager.get_queryset
        and getattr(manager, "_queryset_class", None) is models.QuerySet
    )


class PreparedLookup:
    """``build(model, value)`` → a queryset of at most one row, run as ``.first()`` would.

    ``model`` is given per call (a swappable model: DOT's ``get_*_model()``), so tests that
    swap it and database routers keep working; the compiled form is kept per connection (each
    thread has its own) and model."""

    def __init__(self, build: Callable[[type[models.Model], str], models.QuerySet[Any]]) -> None:
        self._build = build

    def first(self, model: type[models.Model], value: str) -> Any:
        db = router.db_for_read(model)
        connection = connections[db]
        compiled = _compiled(connection, (self, model), lambda: self._compile(model, db))
        if compiled is _FALLBACK or not isinstance(value, str):
            return self._build(model, value).first()
        with connection.cursor() as cursor:
            cursor.execute(compiled.sql, [value])
            rows = cursor.fetchmany(1)
        if compiled.converters:
            rows = compiled.compiler.apply_converters(rows, compiled.converters)
        for row in rows:
            instance = compiled.from_db(db, compiled.init_list, row[compiled.start : compiled.end])
            for populator in compiled.populators:
                populator.populate(row, instance)
            return instance
        return None

    def _compile(self, model: type[models.Model], db: str) -> Any:
        if _plain_manager(model):
            try:
                return _Compiled(self._build(model, _SENTINEL).order_by("pk")[:1], db)
            except Exception as error:  # noqa: BLE001 - any failure means "use the queryset"
                log.info("lookup on %s not prepared (%s); using the queryset", model, error)
        return _FALLBACK


class PreparedInsert:
    """One row of one of this package's own side tables, the ``INSERT`` text compiled once per
    connection by Django's insert compiler, each value prepared by its field
    (``get_db_prep_save``) as ``Model.save`` prepares it.

    For the binding written with every bound token: ``Model.save`` cost more than the
    statement. No ``pre_save``/``post_save`` is sent for these rows (none is documented for
    them); the row is written on the connection and in the transaction the ORM would use.
    """

    def __init__(self, model: type[models.Model], field_names: tuple[str, ...]) -> None:
        self._model = model
        self._field_names = field_names

    def insert(self, **values: Any) -> models.Model:
        """Write the row; return it as an instance loaded from the database would be."""
        model = self._model
        db = router.db_for_write(model)
        connection = connections[db]
        compiled = _compiled(connection, self, lambda: self._compile(db))
        if compiled is _FALLBACK:
            return model._default_manager.using(db).create(**values)
        sql, fields = compiled
        params = [field.get_db_prep_save(values[field.attname], connection) for field in fields]
        # As Model.save: an error dooms the enclosing atomic block, even if a caller catches it
        # (a token must never commit without its binding).
        with transaction.mark_for_rollback_on_error(using=db), connection.cursor() as cursor:
            cursor.execute(sql, params)
        names = [field.attname for field in fields]
        return model.from_db(db, names, [values[name] for name in names])

    def _compile(self, db: str) -> Any:
        meta = self._model._meta
        try:
            fields: list[Any] = [meta.get_field(name) for name in self._field_names]
            if sorted(f.attname for f in meta.concrete_fields) != sorted(f.attname for f in fields):
                raise ValueError(f"columns beyond {self._field_names}")
            sql, _compiler = _insert_sql(self._model, fields, db, None)
            return sql, fields
        except Exception as error:  # noqa: BLE001 - any failure means "use Model.save"
            log.info("insert into %s not prepared (%s); using the ORM", self._model, error)
            return _FALLBACK


class PreparedCreate:
    """``instance.save()`` for a new instance of a model whose saving is Django's own, with
    the ``INSERT … RETURNING`` text compiled once per connection and model.

    For DOT's access token, written with every token response: ``Model.save`` spent more time
    compiling the statement than the database spent running it. Everything else is as
    ``Model.save`` does it: ``pre_save`` and ``post_save`` (``created=True``) are sent, each
    field's ``pre_save`` runs (``auto_now_add``, DOT's token checksum) and its
    ``get_db_prep_save`` prepares the value, the primary key comes back by ``RETURNING`` through
    the backend's own hook, an error dooms the enclosing atomic block, and the instance ends up
    saved (``_state.adding`` false, ``_state.db`` set).

    ``instance.save()`` itself runs instead when the model customises its saving (checked on
    every call: a patch made later is honoured), for an instance that has a primary key already,
    and, decided per connection, for a model with parents, a proxy, generated, database-default
    or placeholder fields, a custom base manager or ``order_with_respect_to``, and on a backend
    without ``RETURNING``. An expression among the values, or a primary key that a ``pre_save``
    receiver sets, gets the ORM's own ``_save_table`` (after the one ``pre_save``).
    """

    def save_new(self, instance: models.Model) -> None:
        model = type(instance)
        if _customised_save(model) or not instance._state.adding or instance.pk is not None:
            instance.save()
            return
        db = router.db_for_write(model, instance=instance)
        connection = connections[db]
        compiled = _compiled(
            connection, (self, model), lambda: self._compile(model, db, connection)
        )
        if compiled is _FALLBACK:
            instance.save(using=db)
            return
        sql, fields, converters, compiler = compiled
        # As Model.save: related objects must be saved, their keys are copied in.
        instance._prepare_related_fields_for_save(operation_name="save")  # type: ignore[attr-defined]
        signals.pre_save.send(
            sender=model, instance=instance, raw=False, using=db, update_fields=None
        )
        with transaction.mark_for_rollback_on_error(using=db):
            values = [field.pre_save(instance, True) for field in fields]
            if instance.pk is not None or any(hasattr(v, "resolve_expression") for v in values):
                # An expression among the values, or a key a pre_save receiver set: the ORM's
                # own save of the row (an UPDATE or an INSERT, the expression evaluated; no
                # second signal).
                updated = instance._save_table(cls=model, using=db)  # type: ignore[attr-defined]
            else:
                updated = False
                params = [
                    f.get_db_prep_save(v, connection) for f, v in zip(fields, values, strict=True)
                ]
                with connection.cursor() as cursor:
                    cursor.execute(sql, params)
                    row = _returned_row(connection, cursor, compiler)
                if converters:
                    row = next(iter(compiler.apply_converters([row], converters)))
                setattr(instance, model._meta.pk.attname, row[0])
        instance._state.db = db
        instance._state.adding = False
        signals.post_save.send(
            sender=model,
            instance=instance,
            created=not updated,
            update_fields=None,
            raw=False,
            using=db,
        )

    def _compile(self, model: type[models.Model], db: str, connection: Any) -> Any:
        try:
            meta = model._meta
            pk = meta.pk
            if meta.parents or meta.proxy or meta.auto_created or meta.order_with_respect_to:
                raise ValueError("parents, proxy, auto-created or order_with_respect_to")
            if meta.base_manager_name or not connection.features.can_return_columns_from_insert:
                raise ValueError("a custom base manager, or no INSERT … RETURNING")
            if pk is not meta.auto_field or list(meta.db_returning_fields) != [pk]:
                raise ValueError("the primary key is not the one auto field returned")
            fields = [f for f in meta.local_concrete_fields if f is not pk]
            if any(f.generated or f.has_db_default() for f in fields):
                raise ValueError("generated or database-default fields")
            sql, compiler = _insert_sql(model, fields, db, [pk])
            return sql, fields, compiler.get_converters([pk.get_col(meta.db_table)]), compiler
        except Exception as error:  # noqa: BLE001 - any failure means "use Model.save"
            log.info("insert into %s not prepared (%s); using Model.save", model, error)
            return _FALLBACK


def _customised_save(model: type[models.Model]) -> bool:
    return any(getattr(model, name) is not getattr(models.Model, name) for name in _SAVE_PATH)


def _returned_row(connection: Any, cursor: Any, compiler: Any) -> Any:
    """The row of ``RETURNING``, read by the backend's own hook (Django 6.1, then 5.2)."""
    ops = connection.ops
    if hasattr(ops, "fetch_returned_rows"):
        return ops.fetch_returned_rows(cursor, compiler.returning_params)[0]
    return ops.fetch_returned_insert_columns(cursor, compiler.returning_params)
