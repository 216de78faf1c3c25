#!/usr/bin/env bash
# Serve the API and results page the production way: gunicorn (gunicorn.conf.py) on a unix socket in a private
# run folder, behind nginx (deploy/nginx.conf), which buffers every request and answer so that slow clients
# never hold a gunicorn thread. Both run in the foreground as the calling user; Ctrl-C / SIGTERM stops both,
# and if either exits the other is stopped too. README "Serving in production".
#
#   scripts/serve-prod.sh                # or: make serve-prod; http://127.0.0.1:8000
#   LINGSHIFT_BIND=0.0.0.0:8000 scripts/serve-prod.sh
#   scripts/serve-prod.sh --check        # render the nginx config and test it (nginx -t), start nothing
#
# Environment: LINGSHIFT_BIND (where nginx listens; default 127.0.0.1:8000), LINGSHIFT_MAX_BODY_BYTES (the
# API's body limit, also nginx's client_max_body_size; default 16384), GUNICORN (the gunicorn to run; default
# .venv/bin/gunicorn of this checkout, else the one on PATH), NGINX (default: nginx on PATH or /usr/sbin/nginx),
# and every other LINGSHIFT_* setting of gunicorn.conf.py and app/settings.py.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
say() { echo "serve-prod: $*" >&2; }

check_only=0
case "${1:-}" in
    --check) check_only=1 ;;
    "") ;;
    *) say "unknown argument $1 (usage: scripts/serve-prod.sh [--check])"; exit 2 ;;
esac

nginx="${NGINX:-$(command -v nginx || true)}"
[ -n "$nginx" ] || { [ -x /usr/sbin/nginx ] && nginx=/usr/sbin/nginx; }
[ -n "$nginx" ] && [ -x "$nginx" ] || {
    say "nginx not found; install it (Debian/Ubuntu: sudo apt-get install nginx), or set NGINX=/path/to/nginx"
    exit 2
}
gunicorn="${GUNICORN:-}"
if [ -z "$gunicorn" ]; then
    if [ -x "$root/.venv/bin/gunicorn" ]; then gunicorn="$root/.venv/bin/gunicorn"; else gunicorn="$(command -v gunicorn || true)"; fi
fi
[ -n "$gunicorn" ] || { say "gunicorn not found; run make venv (or set GUNICORN=/path/to/gunicorn)"; exit 2; }

listen="${LINGSHIFT_BIND:-127.0.0.1:8000}"
[[ "$listen" =~ ^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}$ ]] || {
    say "LINGSHIFT_BIND=$listen is not HOST:PORT (e.g. 127.0.0.1:8000 or 0.0.0.0:8000)"; exit 2; }
max_body="${LINGSHIFT_MAX_BODY_BYTES:-16384}"
[[ "$max_body" =~ ^[0-9]+$ ]] || { say "LINGSHIFT_MAX_BODY_BYTES=$max_body is not a number of bytes"; exit 2; }

run="$(mktemp -d "${TMPDIR:-/tmp}/lingshift-serve.XXXXXX")"
chmod 700 "$run"  # only this user reaches the gunicorn socket: X-Forwarded-For comes from nginx alone
sock="$run/gunicorn.sock"
gpid="" npid=""
stop() {
    trap - EXIT INT TERM
    set +e  # stop both and clean up whatever has already gone
    if [ -n "$npid" ]; then kill -QUIT "$npid" 2>/dev/null; fi  # graceful: finish the requests in flight
    if [ -n "$gpid" ]; then kill -TERM "$gpid" 2>/dev/null; fi  # graceful (graceful_timeout in gunicorn.conf.py)
    wait 2>/dev/null
    rm -rf "$run"
}
trap stop EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

# Started by root, nginx would switch its workers to "nobody", who cannot reach the private run folder; they run
# as the caller instead (gunicorn does too: run this as an unprivileged user where you can).
as_user=()
[ "$(id -u)" -eq 0 ] && as_user=(-g "user root root;")
# nginx opens /dev/stdout anew for its access log: that fails where stdout is a file another user owns.
access_log="/dev/stdout timed"
if ! (exec 3>>/proc/self/fd/1) 2>/dev/null; then
    access_log=off
    say "stdout cannot be reopened by $(id -un): nginx's access log is off (gunicorn's still logs each request)"
fi
sed -e "s|@LISTEN@|$listen|g" -e "s|@ACCESS_LOG@|$access_log|g" -e "s|@UPSTREAM@|unix:$sock|g" -e "s|@RUNDIR@|$run|g" -e "s|@MAX_BODY@|$max_body|g" \
    "$root/deploy/nginx.conf" >"$run/nginx.conf"
"$nginx" -t -q -p "$run/" -e stderr -c "$run/nginx.conf" "${as_user[@]}" || { say "nginx rejected deploy/nginx.conf (above)"; exit 1; }
if [ "$check_only" = 1 ]; then
    say "nginx config OK ($("$nginx" -v 2>&1)), listening on $listen"
    exit 0
fi

# gunicorn on the socket, with the entry point that trusts nginx's X-Forwarded-For (deploy/wsgi.py). Its request
# limits sit above nginx's (request line and each header <= 4 KiB, all headers <= 16 KiB, so fewer than 4,096
# header lines), so its own text/html 400/414/431 pages never answer a request that nginx let through.
LINGSHIFT_BIND="unix:$sock" "$gunicorn" -c "$root/gunicorn.conf.py" \
    --limit-request-line 8190 --limit-request-fields 4096 --limit-request-field_size 8190 \
    "deploy.wsgi:create_app()" &
gpid=$!
for _ in $(seq 1 600); do  # at most 60 s for gunicorn to bind (it loads no model at start)
    [ -S "$sock" ] && break
    kill -0 "$gpid" 2>/dev/null || { wait "$gpid" || true; say "gunicorn exited before it listened (log above)"; exit 1; }
    sleep 0.1
done
[ -S "$sock" ] || { say "gunicorn did not listen on its socket within 60 s"; exit 1; }

"$nginx" -p "$run/" -e stderr -c "$run/nginx.conf" "${as_user[@]}" &
npid=$!
say "nginx on http://$listen -> gunicorn on a unix socket (pids $npid, $gpid); Ctrl-C stops both"
rc=0
wait -n "$gpid" "$npid" || rc=$?
say "$(kill -0 "$npid" 2>/dev/null && echo gunicorn || echo nginx) exited (status $rc); stopping the other"
exit "$rc"
