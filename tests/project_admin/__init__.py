"""A project's own Application admin, registered as DOT users do (``MTLS_TEST_ADMIN_ROUTE``):

- ``register``: ``admin.site.unregister(Application)``, then its own class, without our inline;
- ``register_inline``: the same, with ``MTLSClientInline`` in its ``inlines``;
- ``setting``: a class with ``MTLSApplicationAdminMixin`` named in DOT's
  ``APPLICATION_ADMIN_CLASS`` (``tests.settings_project_admin``), registered by DOT;
- empty: nothing of its own.
"""
