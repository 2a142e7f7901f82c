# peerbench target "ours": django-oauth-mtls (this repository) on DOT 3.4.1, a third peer beside
# node-oidc-provider ("nop") and plain DOT ("dot"). Sourced by ../shared/peerbench/run.sh:
#
#   EXTRA_TARGET_FILES=$PWD/benchmarks/peerbench_target.sh TARGETS="nop ours" \
#     ../shared/peerbench/run.sh
#
# (python -m benchmarks --only peerbench does exactly that and reads the results.)
# Installs the committed tree (git archive HEAD; OURS_SOURCE=worktree for the working tree) with
# peerbench's pins into $WORK/ours-venv, copies benchmarks/peerbench_project/oursproj (peerbench's
# dot project plus our app, middleware and validator, certificate source rfc9440 from 127.0.0.1,
# peerbench's test CA trusted) and runs the mTLS scenarios with the same ids as nop's rows:
#   b token tls_client_auth (CA-signed)      client ours-pki, SAN dns, bound tokens
#   b token self_signed_tls_client_auth      client ours-selfsigned, jwks x5c, bound tokens
#   d resource GET                           bound token + its certificate, MTLSOAuth2Authentication
#   d resource GET (DOT ..., same server)    plain token, DOT's OAuth2Authentication: the baseline
#   a token client_secret_basic              ours-plain, unhashed (only with OURS_ALL=1)
# and, in ours_tuned and ours_uwsgi only (P10, issue #15; OURS_JWT=0 leaves it out), after a
# restart of the same server set-up in RESOURCE_SERVER_TOKEN_VALIDATION="jwt" mode
# (ours_jwt_phase below):
#   d resource GET (peer "... jwt ...")      a bound JWT + its certificate, checked locally, a
#                                            distinct token per request: a pool of OURS_JWT_POOL
#                                            (1000) tokens cycled by our wrk script

# peerbench's wait_idle waits up to 180 s, before and after every run, for the box to be < 15 %
# busy, so that PBKDF2 work wrk abandoned cannot eat into the next run. The scenarios of nop and
# ours queue no such work, and on a machine shared with other work the box is never that idle:
# every wait would cost the full 3 minutes. PEERBENCH_IDLE_MAX (seconds, default 20) bounds the
# wait for the whole run, both targets alike; PEERBENCH_IDLE_MAX=180 is peerbench's own.
wait_idle() {
  local i a b busy max=${PEERBENCH_IDLE_MAX:-20}
  for i in $(seq $((max * 2))); do
    a=($(head -1 /proc/stat)); sleep 0.5; b=($(head -1 /proc/stat))
    busy=$(( ( (b[1]+b[2]+b[3]+b[6]+b[7]) - (a[1]+a[2]+a[3]+a[6]+a[7]) ) * 100 /
             ( (b[1]+b[2]+b[3]+b[4]+b[5]+b[6]+b[7]+1) - (a[1]+a[2]+a[3]+a[4]+a[5]+a[6]+a[7]) ) ))
    [ "$busy" -lt 15 ] && return 0
  done
  log "warning: box still busy after ${max}s"
}

OURS_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OURS_SOURCE=${OURS_SOURCE:-head}
# Two configurations, two targets (TARGETS="nop ours ours_tuned"):
#   ours        the dot peer's set-up: GUNICORN_ARGS (4 sync workers: a TCP connection per
#               request), a database connection per request, SQLite WAL with synchronous=FULL;
#   ours_tuned  what a user tuned for throughput runs: sync workers, one per core,
#               persistent database connections (CONN_MAX_AGE=600), WAL with synchronous=NORMAL,
#               ENGINE=django_oauth_mtls.contrib.sqlite3 with BEGIN IMMEDIATE.
# OURS_GUNICORN_ARGS / OURS_TUNED_GUNICORN_ARGS override the gunicorn arguments.
# Tuned: sync workers, one per core (OURS_TUNED_WORKERS, default nproc). Measured on this 2-core
# box against 4 gthread workers x 1 thread (docs/performance.md, "Workers"): the same token
# throughput (890-901 req/s against 686-945) with a third of the p99 (44-47 ms against 133-145),
# and 20 % more resource GETs (2,020-2,170 against 1,700-1,760). A sync worker accepts a
# connection only when it is free, so load spreads over the workers; gthread workers keep the
# keep-alive connections they accepted, and one worker may end up with most of them (a token run
# at 686 req/s with the CPU half idle). Threads are worse again on SQLite: the thread holding the
# write lock waits for its process's GIL while the other writers sleep. floor_tuned runs the
# same arguments (P11 compares with the same server set-up).
: "${OURS_TUNED_GUNICORN_ARGS:=--workers ${OURS_TUNED_WORKERS:-$(nproc)} --worker-class sync}"
export FLOOR_TUNED_GUNICORN_ARGS=${FLOOR_TUNED_GUNICORN_ARGS:-$OURS_TUNED_GUNICORN_ARGS}
# ours_uwsgi (reported beside ours_tuned, not graded; docs/performance.md, "App server"): the
# tuned set-up with uWSGI in place of gunicorn, its HTTP parser in C: the same processes (one per
# core), database and settings, and docs/proxies.md's --buffer-size. OURS_UWSGI_ARGS are uWSGI's
# arguments after --http-socket: uWSGI's plain HTTP socket does not keep connections alive, and
# "Connection: close" tells wrk so (a sync gunicorn worker sends it too); without it wrk counts
# every close as a socket error. floor_uwsgi serves peerbench's floor project the same way (P11
# compares with the same server set-up).
OURS_UWSGI_PIN=${OURS_UWSGI_PIN:-pyuwsgi==2.0.30.post1}
: "${OURS_UWSGI_ARGS:=--processes ${OURS_TUNED_WORKERS:-$(nproc)} --buffer-size 32768 --add-header Connection:close}"
ours_configure() {  # ours_configure default|tuned|uwsgi
  OURS_SERVER=gunicorn
  if [ "$1" = uwsgi ]; then
    ours_configure tuned
    OURS_SERVER=uwsgi OURS_ARGS="uwsgi $OURS_UWSGI_ARGS"
    OURS_LABEL="tuned: ${OURS_ARGS}, ${OURS_LABEL#*, }"
  elif [ "$1" = tuned ]; then
    OURS_ARGS=$OURS_TUNED_GUNICORN_ARGS
    export PEERBENCH_OURS_CONN_MAX_AGE=600 PEERBENCH_OURS_SQLITE_SYNCHRONOUS=NORMAL
    # django_oauth_mtls.contrib.sqlite3: BEGIN IMMEDIATE waits in steps of 10-250 us, not in
    # SQLite's 1, 2, 5 ... ms busy handler (docs/performance.md). OURS_TUNED_SQLITE_ENGINE=
    # django.db.backends.sqlite3 measures the tuned set-up without it.
    export PEERBENCH_OURS_SQLITE_ENGINE=${OURS_TUNED_SQLITE_ENGINE:-django_oauth_mtls.contrib.sqlite3}
    OURS_LABEL="tuned: ${OURS_ARGS}, CONN_MAX_AGE=600, synchronous=NORMAL"
    [ "$PEERBENCH_OURS_SQLITE_ENGINE" = django.db.backends.sqlite3 ] ||
      OURS_LABEL="$OURS_LABEL, ENGINE=${PEERBENCH_OURS_SQLITE_ENGINE}"
  else
    OURS_ARGS=${OURS_GUNICORN_ARGS:-$GUNICORN_ARGS}
    export PEERBENCH_OURS_CONN_MAX_AGE=0 PEERBENCH_OURS_SQLITE_SYNCHRONOUS=
    export PEERBENCH_OURS_SQLITE_ENGINE=django.db.backends.sqlite3
    OURS_LABEL="as dot: ${OURS_ARGS}"
  fi
}

ensure_ours_venv() {
  local venv="$WORK/ours-venv" src="$WORK/ours-src" rev
  # Once per run: both targets measure the same code, even if HEAD moves meanwhile.
  [ -n "${OURS_REV:-}" ] && [ -x "${OURS_PY:-}" ] && return 0
  [ -x "$venv/bin/python" ] || { [ -n "$PY312" ] || { log "no pyenv 3.12 found"; return 1; }; "$PY312" -m venv "$venv"; }
  if ! "$venv/bin/python" -c "import importlib.metadata as m,sys; sys.exit(m.version('django-oauth-toolkit')!='$DOT_VERSION')" 2>/dev/null \
     || ! "$venv/bin/python" -c "import gunicorn, rest_framework" 2>/dev/null; then
    log "pip install django-oauth-toolkit==$DOT_VERSION $DOT_PIP_PINS (ours)"
    # shellcheck disable=SC2086
    "$venv/bin/pip" install -q --disable-pip-version-check "django-oauth-toolkit==$DOT_VERSION" $DOT_PIP_PINS
  fi
  rm -rf "$src"; mkdir -p "$src"
  if [ "$OURS_SOURCE" = worktree ]; then
    rev="worktree-$(date +%s)"
    (cd "$OURS_REPO" && tar --exclude=.venv* --exclude=.git --exclude=build -cf - pyproject.toml README.md django_oauth_mtls) | tar -xf - -C "$src"
  else
    rev=$(git -C "$OURS_REPO" rev-parse --short HEAD)
    git -C "$OURS_REPO" archive HEAD pyproject.toml README.md django_oauth_mtls | tar -xf - -C "$src"
  fi
  log "pip install django-oauth-mtls ($OURS_SOURCE $rev)"
  "$venv/bin/pip" install -q --disable-pip-version-check --force-reinstall --no-deps "$src"
  "$venv/bin/pip" install -q --disable-pip-version-check "$src"   # its dependencies, if missing
  OURS_PY="$venv/bin/python"
  OURS_REV=$rev
}

target_ours() { ours_run default; }
target_ours_tuned() { ours_run tuned; }
target_ours_uwsgi() { ours_run uwsgi; }

ours_start_server() {  # ours_start_server <name> <dir> <port>: OURS_SERVER with OURS_ARGS
  if [ "$OURS_SERVER" = uwsgi ]; then
    ours_uwsgi_serve "$1" "$2" "$3" oursproj.wsgi
  else
    # shellcheck disable=SC2086
    start_server "$1" "$OURS_PY" -m gunicorn --chdir "$2" $OURS_ARGS --no-control-socket \
      --bind "127.0.0.1:$3" oursproj.wsgi
  fi
}
# uWSGI as docs/proxies.md runs it, except that SIGTERM ends it at once (--die-on-term: nothing
# is in flight once wrk has stopped) and requests are not logged (gunicorn logs none either).
ours_uwsgi_serve() {  # ours_uwsgi_serve <name> <dir> <port> <module>
  ensure_ours_uwsgi || return 1
  # shellcheck disable=SC2086
  start_server "$1" "$(dirname "$OURS_PY")/uwsgi" --strict --http-socket "127.0.0.1:$3" \
    --chdir "$2" --module "$4" --master --need-app --die-on-term --disable-logging $OURS_UWSGI_ARGS
}
ensure_ours_uwsgi() {  # OURS_UWSGI_PIN in our venv, the version the labels name
  "$OURS_PY" -c 'import importlib.metadata as m, sys; sys.exit(m.version("pyuwsgi") != sys.argv[1])' \
    "${OURS_UWSGI_PIN#*==}" 2>/dev/null && [ -x "$(dirname "$OURS_PY")/uwsgi" ] && return 0
  log "pip install $OURS_UWSGI_PIN (ours_uwsgi, floor_uwsgi)"
  "$OURS_PY" -m pip install -q --disable-pip-version-check "$OURS_UWSGI_PIN"
}

# peerbench's floor project (empty Django and DRF views) on uWSGI, in our venv (peerbench's pins,
# plus pyuwsgi): the same three scenarios as floor/target.sh's target_floor, labelled the same way
# ("floor (Django PINS; ARGS)") with uWSGI's arguments.
target_floor_uwsgi() {
  local dir="$WORK/floor-uwsgi" port=8102 u="http://127.0.0.1:8102" peer
  ensure_ours_venv && ensure_ours_uwsgi || return 1
  peer="floor (Django $DOT_PIP_PINS $OURS_UWSGI_PIN; uwsgi $OURS_UWSGI_ARGS)"
  rm -rf "$dir"; mkdir -p "$dir"; cp -r "$HERE/floor/floorproj" "$dir/"
  ours_uwsgi_serve floor-uwsgi "$dir" "$port" floorproj.wsgi || return 1
  wait_http "$u/floor/django"
  scenario "f floor GET (empty Django view)" "$peer" GET "$u/floor/django" "" "" '"ok": ?true'
  scenario "f floor GET (empty DRF APIView)" "$peer" GET "$u/floor/drf" "" "" '"ok": ?true'
  scenario "f floor POST form (empty DRF APIView)" "$peer" POST "$u/floor/drf" "$FORM" "grant_type=client_credentials&scope=read" '"ok": ?true'
  stop_server
}

ours_run() {
  local dir="$WORK/ours" port=${OURS_PORT:-8100}
  ours_configure "$1"
  local u="http://127.0.0.1:$port" peer pki_t plain_t
  ensure_ours_venv
  peer="ours-$OURS_REV"
  rm -rf "$dir"; mkdir -p "$dir"; cp -r "$OURS_REPO/benchmarks/peerbench_project/oursproj" "$dir/"
  export PEERBENCH_OURS_DB="$dir/db.sqlite3" PEERBENCH_CA="$CERTS/ca.crt" PEERBENCH_CERTS="$CERTS"
  "$OURS_PY" "$dir/oursproj/setup_db.py" >&2
  ours_start_server "ours-$1" "$dir" "$port" || return 1
  wait_http "$u/o/token/"

  scenario "b token tls_client_auth (CA-signed)" "$peer (bound; $OURS_LABEL)" POST "$u/o/token/" "$PKI_HDR
$FORM" "grant_type=client_credentials&scope=read&client_id=ours-pki" access_token
  scenario "b token self_signed_tls_client_auth" "$peer (bound; $OURS_LABEL)" POST "$u/o/token/" "$SELFSIGNED_HDR
$FORM" "grant_type=client_credentials&scope=read&client_id=ours-selfsigned" access_token
  if [ "${OURS_ALL:-0}" = 1 ]; then
    scenario "a token client_secret_basic" "$peer plain secret; $OURS_LABEL" POST "$u/o/token/" "$(basic ours-plain ours-plain-secret-0123456789abcdef)
$FORM" "grant_type=client_credentials&scope=read" access_token
  fi
  pki_t=$(get_token -H "$PKI_HDR" -d grant_type=client_credentials -d scope=read -d client_id=ours-pki "$u/o/token/")
  plain_t=$(get_token -u ours-plain:ours-plain-secret-0123456789abcdef -d grant_type=client_credentials -d scope=read "$u/o/token/")
  # P7b (issue #16): the two GETs are compared run by run, so they run interleaved (A B, B A,
  # ..., one measured run per call) after a WAL checkpoint, not one scenario's runs after the
  # other's: load from elsewhere on the box and the WAL the token scenarios left behind then
  # hit both sides alike (sequential runs gave 0.83x once and 1.16x another time).
  # At least 4 pairs whatever REPS (OURS_P7B_PAIRS): the run's ratio is their median, and one
  # pair of 10 s runs spreads as far as the goal's margin on this machine (docs/performance.md).
  ours_checkpoint "$PEERBENCH_OURS_DB"
  local rep reps=${OURS_P7B_PAIRS:-$REPS}
  [ "$reps" -ge 4 ] || reps=4
  for rep in $(seq "$reps"); do
    if [ $((rep % 2)) = 1 ]; then ours_get_bound; ours_get_plain; else ours_get_plain; ours_get_bound; fi
  done
  stop_server
  if [ "$1" != default ] && [ "${OURS_JWT:-1}" = 1 ]; then
    ours_jwt_phase "$1" "$dir" "$port" "$peer"
  fi
}

ours_get_bound() {
  REPS=1 scenario "d resource GET" "$peer (bound token + x5t#S256 check; $OURS_LABEL)" GET "$u/api/resource" "Authorization: Bearer $pki_t
$PKI_HDR" "" '"ok": ?true'
}
ours_get_plain() {
  REPS=1 scenario "d resource GET" "$peer DOT OAuth2Authentication, plain token (same server; $OURS_LABEL)" GET "$u/api/resource-dot" "Authorization: Bearer $plain_t" "" '"ok": ?true'
}
ours_checkpoint() {  # fold SQLite's WAL back into the database (no-op on PostgreSQL)
  [ -n "${PEERBENCH_OURS_PG:-}" ] || "$OURS_PY" -c 'import sqlite3, sys; sqlite3.connect(sys.argv[1]).execute("PRAGMA wal_checkpoint(TRUNCATE)")' "$1" || true
}

# P10 (issue #15): the resource GET with a certificate-bound JWT access token and its
# certificate, RESOURCE_SERVER_TOKEN_VALIDATION="jwt" (no database, no network on the request
# path), on the same server set-up as the scenarios above, a distinct token per request.
#
# peerbench's scenario() takes no wrk script: its wrk command line is fixed to
# -s "$HERE/bench/wrk.lua", whose headers are static (one token for the whole run). So the
# scenario runs with HERE pointing at benchmarks/peerbench_project, whose bench/wrk.lua is
# peerbench's script plus a token pool (OURS_WRK_TOKENS, one token per line): peerbench's own
# check request, warm-up, measured runs, wait_idle and raw.tsv line, only the script differs.
# If scenario() stops naming $HERE/bench/wrk.lua, the row is written as SKIPPED with the reason.
# Knobs: OURS_JWT_POOL (tokens, default 1000, at least 1000 for P10), OURS_JWT_KEY_TYPE
# (mtls_jwt_key --type: ec-p256 = ES256 by default, rsa = PS256, ed25519 = EdDSA).
ours_jwt_phase() {  # ours_jwt_phase default|tuned <dir> <port> <peer>
  local dir=$2 port=$3 peer=$4 u="http://127.0.0.1:$3" pool=${OURS_JWT_POOL:-1000}
  local key_type=${OURS_JWT_KEY_TYPE:-ec-p256} minted alg first label
  label="$peer jwt (bound JWT + x5t#S256 check, jwt mode, no verification cache"
  if ! declare -f scenario | grep -qF '"$HERE/bench/wrk.lua"'; then
    log "SKIP d resource GET/$label: peerbench's scenario() no longer runs \$HERE/bench/wrk.lua, the token pool cannot be used"
    printf '# SKIPPED\t%s\t%s\t%s\n' "d resource GET" "$label)" "scenario() takes no wrk script" >> "$RAW"
    return 0
  fi
  export PEERBENCH_OURS_JWT_KEY="$dir/access-token-$key_type.pem" PEERBENCH_OURS_JWT_KEY_TYPE="$key_type"
  export PEERBENCH_OURS_RS_MODE=jwt OURS_WRK_TOKENS="$dir/jwt-tokens.txt"
  "$OURS_PY" "$dir/oursproj/setup_db.py" >&2
  ours_start_server "ours-$1-jwt" "$dir" "$port" || return 1
  wait_http "$u/o/token/"
  if ! minted=$("$OURS_PY" "$dir/oursproj/mint_tokens.py" "$u/o/token/" ours-pki-jwt "$CERTS/pki.hdr" "$pool" 2>&1 >"$OURS_WRK_TOKENS"); then
    log "SKIP d resource GET/$label: minting the token pool failed: $minted"
    printf '# SKIPPED\t%s\t%s\t%s\n' "d resource GET" "$label)" "mint failed" >> "$RAW"
  else
    alg=${minted#*alg=}; alg=${alg%% *}
    log "minted $pool JWT access tokens: $minted"
    first=$(head -1 "$OURS_WRK_TOKENS")
    HERE="$OURS_REPO/benchmarks/peerbench_project" scenario "d resource GET" \
      "$label, $alg, $pool-token pool; $OURS_LABEL)" GET "$u/api/resource-jwt" "Authorization: Bearer $first
$PKI_HDR" "" '"ok": ?true'
  fi
  stop_server
  unset PEERBENCH_OURS_JWT_KEY PEERBENCH_OURS_JWT_KEY_TYPE PEERBENCH_OURS_RS_MODE OURS_WRK_TOKENS
}
