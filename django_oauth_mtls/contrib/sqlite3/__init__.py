"""A SQLite database backend whose write transactions wait for the lock in short steps.

``ENGINE = "django_oauth_mtls.contrib.sqlite3"`` with ``OPTIONS = {"transaction_mode":
"IMMEDIATE"}`` (docs/performance.md). It is Django's own SQLite backend, except how ``BEGIN
IMMEDIATE`` (or ``EXCLUSIVE``) waits when another connection holds SQLite's write lock:

- Django's backend leaves it to SQLite's busy handler, which sleeps 1, 2, 5, 10 … ms between
  tries. A token request holds the lock about 0.3 ms (issue #16), so the waiting writer sleeps
  past the moment the lock frees while the CPU idles: on a 2-core box the token endpoint stopped
  near 900 requests/s with a third of the CPU unused.
- This backend tries again after 10 µs, doubling the pause up to 250 µs, for 5 ms; then SQLite's
  busy handler waits out the rest of the connection's busy timeout (the ``timeout`` option,
  ``sqlite3.connect``'s default 5 s, or a later ``PRAGMA busy_timeout``). Then it raises the
  error Django's backend raises ("database is locked"), and logs why.

Nothing else changes how SQLite waits: every other statement (a write outside a transaction, a
read) keeps SQLite's busy handler and the ``timeout`` option; with ``transaction_mode`` unset
or ``"DEFERRED"`` the backend waits exactly as Django's (check ``oauth_mtls.W040`` says so).

Its cursor keeps Django's conversion of ``%s`` placeholders to SQLite's ``?`` per statement (a
regular expression over the whole statement at every ``execute``), in a bounded cache
(``CACHED_QUERIES`` statements of at most ``CACHED_QUERY_CHARS`` characters); the result is
Django's own conversion.
It is plain SQLite plumbing with no RFC 8705 in it; PostgreSQL does not need it.
"""
