"""The production front end: nginx (deploy/nginx.conf) in front of gunicorn, started by scripts/serve-prod.sh.

The unit tests check the script's refusals, the body-limit parity with the API, and the WSGI entry point behind
the proxy. The integration tests start ``scripts/serve-prod.sh`` on a free loopback port (serving this checkout's
committed results) and check nginx's own errors (RFC 9457 problem+json, nosniff, no server path), that the
app's answers pass unchanged, that no redirect names the client's Host, that a normal client is answered while
200 slow connections hang (scripts/slow-clients.py), and that SIGTERM stops both servers.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SERVE = ROOT / "scripts" / "serve-prod.sh"
SLOW = ROOT / "scripts" / "slow-clients.py"
GUNICORN = Path(sys.executable).parent / "gunicorn"
PROBLEM = "application/problem+json"
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
needs_nginx = pytest.mark.skipif(NGINX is None, reason="nginx is not installed (Debian: apt-get install nginx)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(port: int, **extra: str) -> dict[str, str]:
    return {**os.environ, "LINGSHIFT_BIND": f"127.0.0.1:{port}", "GUNICORN": str(GUNICORN), **extra}


# ---------------------------------------------------------------------------------------------- unit


def test_missing_nginx_says_how_to_install_it() -> None:
    r = subprocess.run([str(SERVE)], env=_env(_free_port(), NGINX="/nonexistent/nginx"), capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 2 and "apt-get install nginx" in r.stderr


@pytest.mark.parametrize("bind", ["8000", "127.0.0.1", "127.0.0.1:80; evil", "unix:/tmp/x"])
def test_a_bind_that_is_not_host_port_is_refused(bind: str) -> None:
    r = subprocess.run([str(SERVE), "--check"], env={**_env(0), "LINGSHIFT_BIND": bind, "NGINX": "/bin/true"},
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "is not HOST:PORT" in r.stderr


def test_nginx_body_limit_is_the_apis() -> None:
    """client_max_body_size comes from LINGSHIFT_MAX_BODY_BYTES, whose default there is the API's default."""
    from app.settings import Settings

    script = SERVE.read_text()
    default = re.search(r"LINGSHIFT_MAX_BODY_BYTES:-(\d+)", script)
    assert default and int(default.group(1)) == Settings.model_fields["max_body_bytes"].default
    assert re.search(r"^\s*client_max_body_size @MAX_BODY@;", (ROOT / "deploy" / "nginx.conf").read_text(), re.M)


def test_behind_the_proxy_each_forwarded_client_has_its_own_rate_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """deploy/wsgi.py: the per-client limit counts the address nginx forwards, not the proxy's own."""
    monkeypatch.syspath_prepend(str(ROOT))
    from app.settings import Settings
    from deploy.wsgi import create_app

    c = create_app(Settings(root=ROOT, rate_limit="2/minute")).test_client()

    def post(client_addr: str) -> int:
        return c.post("/v1/probe", json={}, headers={"X-Forwarded-For": client_addr},
                      environ_base={"REMOTE_ADDR": "127.0.0.1"}).status_code

    assert [post("203.0.113.1") for _ in range(3)][-1] == 429
    assert post("203.0.113.2") != 429


@needs_nginx
def test_the_config_renders_and_nginx_accepts_it() -> None:
    r = subprocess.run([str(SERVE), "--check"], env=_env(_free_port()), capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert "nginx config OK" in r.stderr


# ------------------------------------------------------------------------------------------ served


def _start(port: int, log: Path) -> subprocess.Popen:
    """``scripts/serve-prod.sh`` in its own session, its output to ``log``, once it answers /livez."""
    with log.open("wb") as out:
        proc = subprocess.Popen([str(SERVE)], env=_env(port), stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"serve-prod.sh exited {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            status, _, _ = _raw(port, b"GET /livez HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            if status == 200:
                return proc
        except OSError:
            pass
        time.sleep(0.2)
    _stop(proc)
    raise AssertionError("serve-prod.sh did not answer /livez within 60 s")


def _stop(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=40)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """The port of ``scripts/serve-prod.sh`` serving this checkout (committed results; models not needed)."""
    if NGINX is None:
        pytest.skip("nginx is not installed (Debian: apt-get install nginx)")
    port = _free_port()
    proc = _start(port, tmp_path_factory.mktemp("serve-prod") / "serve.log")
    yield port
    _stop(proc)


def _raw(port: int, request: bytes, timeout: float = 15) -> tuple[int, dict[str, list[str]], bytes]:
    """Send bytes as they are; read the answer to its end: ``(status, headers (lower-case names), body)``."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(request)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
            head, sep, body = data.partition(b"\r\n\r\n")
            length = re.search(rb"(?im)^content-length: *(\d+)", head)
            if sep and length and len(body) >= int(length.group(1)):
                break
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers: dict[str, list[str]] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    return int(lines[0].split()[1]), headers, body


def _get(path: str, *extra: str) -> bytes:
    return "\r\n".join([f"GET {path} HTTP/1.1", "Host: t", *extra, "Connection: close", "", ""]).encode()


NGINX_ERRORS = {
    "malformed request line": (b"GARBAGE\r\n\r\n", 400),
    "no Host": (b"GET /livez HTTP/1.1\r\n\r\n", 400),
    "request line over 4 KiB": (_get("/" + "a" * 5000), 414),
    "header over 4 KiB": (_get("/livez", "X-Big: " + "a" * 5000), 431),
    "body over the API's limit": (b"POST /v1/probe HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                                  b"Content-Length: 20000\r\nConnection: close\r\n\r\n" + b" " * 20000, 413),
    "chunked body over the limit": (b"POST /v1/probe HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                                    b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                                    + b"".join(b"1000\r\n" + b" " * 4096 + b"\r\n" for _ in range(5)) + b"0\r\n\r\n",
                                    413),
    "broken chunked body": (b"POST /v1/probe HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                            b"Transfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
    "unknown Transfer-Encoding": (b"POST /v1/probe HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
    "HTTP/2.0 request line": (b"GET /livez HTTP/2.0\r\nHost: t\r\n\r\n", 505),
    "TRACE": (b"TRACE / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", 405),
    "internal error location": (_get("/_errors/internal"), 404),
}


@pytest.mark.integration
@pytest.mark.parametrize("case", list(NGINX_ERRORS))
def test_nginx_errors_are_problem_details(served: int, case: str) -> None:
    request, status = NGINX_ERRORS[case]
    got, headers, body = _raw(served, request)
    assert got == status, body
    assert headers["content-type"] == [PROBLEM]
    assert headers["x-content-type-options"] == ["nosniff"]
    problem = json.loads(body)
    assert problem["status"] == status and problem["title"] and problem["type"] == "about:blank"
    assert len(problem["detail"]) > 20 and "/tmp" not in problem["detail"] and "lingshift-serve" not in body.decode()
    assert headers["server"] == ["nginx"]  # no version


@pytest.mark.integration
def test_the_apps_answers_pass_unchanged_with_one_nosniff(served: int) -> None:
    status, headers, body = _raw(served, _get("/v1/results?limit=1"))
    assert status == 200 and headers["content-type"] == ["application/json"] and json.loads(body)["items"]
    assert headers["x-content-type-options"] == ["nosniff"]
    status, headers, body = _raw(served, _get("/no/such/thing"))  # the app's own 404, not nginx's
    assert status == 404 and headers["content-type"] == [PROBLEM] and json.loads(body)["instance"] == "/no/such/thing"
    assert headers["x-content-type-options"] == ["nosniff"]


@pytest.mark.integration
def test_no_redirect_names_the_clients_host(served: int) -> None:
    request = b"GET //static//app.js HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n"
    status, headers, _ = _raw(served, request)
    # the app no longer redirects merged slashes (404); were it to redirect, nginx keeps the Location relative
    assert status == 404 or 300 <= status < 400
    for location in headers.get("location", []):
        assert location.startswith("/") and not location.startswith("//") and "evil.example" not in location


@pytest.mark.integration
def test_a_normal_client_is_answered_while_200_slow_connections_hang(served: int, tmp_path: Path) -> None:
    """scripts/slow-clients.py: every normal request answered 200 while all 200 slow connections stay open.

    The 2 s latency bound is .ci/run's benchmark; here the bound is the request timeout (5 s): without the
    front end (gunicorn alone) every normal request times out.
    """
    out = tmp_path / "slow.json"
    r = subprocess.run([sys.executable, str(SLOW), "--url", f"http://127.0.0.1:{served}", "--slow", "200",
                        "--requests", "10", "--max-latency", "5", "--json", str(out)],
                       capture_output=True, text=True, timeout=120)
    summary = json.loads(out.read_text())["summary"]
    assert r.returncode == 0, r.stdout + r.stderr
    assert summary["answered_200"] == 10 and summary["slow_opened"] == 200
    assert summary["slow_hanging_during_normal_client"] == 200


@pytest.mark.integration
@needs_nginx
def test_sigterm_stops_nginx_and_gunicorn(tmp_path: Path) -> None:
    port = _free_port()
    proc = _start(port, tmp_path / "serve.log")
    assert _stop(proc) in (0, 143)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    left = subprocess.run(["ps", "-o", "pid=", "-s", str(proc.pid)], capture_output=True, text=True).stdout.split()
    assert left == [], f"processes left in the session: {left}"
