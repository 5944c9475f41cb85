"""The images cannot be built here (no Docker). What can be checked without
building: every file a Dockerfile copies exists in the build context and is
not ignored, every entrypoint it names is installed by it, it runs as a
numeric non-root user, and its base images and versions are pinned."""
import re
import shlex
import subprocess
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
IMAGES = REPO / "images"
DOCKERFILES = sorted(IMAGES.glob("*/Dockerfile"))


def instructions(dockerfile: Path):
    """(INSTRUCTION, argument text) with continuation lines joined and comments dropped."""
    out, buf = [], ""
    for raw in dockerfile.read_text().splitlines():
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if buf and line.startswith("#"):
            continue
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        word, _, rest = buf.partition(" ")
        out.append((word.upper(), rest.strip()))
        buf = ""
    return out


def build_args(ins):
    args = {}
    for word, rest in ins:
        if word == "ARG" and "=" in rest:
            k, v = rest.split("=", 1)
            args[k] = v
    return args


def console_scripts(package_dir: str):
    data = tomllib.loads((REPO / package_dir / "pyproject.toml").read_text())
    return set(data["project"].get("scripts", {}))


def ignored_top_levels(dockerfile: Path):
    """What the Dockerfile's own .dockerignore lets through (the context is the repo root)."""
    ignore = dockerfile.with_name("Dockerfile.dockerignore")
    assert ignore.exists(), f"{ignore} missing: the whole repository (and .venv) would be sent"
    allowed = {line[1:].rstrip("/") for line in ignore.read_text().splitlines() if line.startswith("!")}
    return allowed


def test_there_are_three_images():
    assert [d.parent.name for d in DOCKERFILES] == ["operator", "pipeline-ascend", "pipeline-cpu"]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_every_copied_file_exists_and_is_sent(dockerfile):
    allowed = ignored_top_levels(dockerfile)
    copies = 0
    for word, rest in instructions(dockerfile):
        if word not in ("COPY", "ADD"):
            continue
        parts = [p for p in shlex.split(rest) if not p.startswith("--")]
        if rest.startswith("--from="):
            continue  # from another stage, not the context
        *sources, _dest = parts
        for src in sources:
            copies += 1
            assert (REPO / src).exists(), f"{dockerfile.parent.name}: COPY {src}: no such file in the context"
            assert src.split("/")[0] in allowed, f"{src} is excluded by {dockerfile.name}.dockerignore"
    assert copies >= 1


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_entrypoint_is_installed_by_the_image(dockerfile):
    ins = instructions(dockerfile)
    (entry,) = [rest for word, rest in ins if word == "ENTRYPOINT"][-1:]
    import json
    argv = json.loads(entry)
    program = argv[0]
    text = dockerfile.read_text()
    installed = set()
    for package in ("operator", "pipeline"):
        if re.search(rf"pip install[^\n]*(\\\n[^\n]*)*/src/{package}", text):
            installed |= console_scripts(package)
    copied_to = {shlex.split(rest)[-1].rsplit("/", 1)[-1] for word, rest in ins if word == "COPY"}
    assert program in installed | copied_to, f"{dockerfile.parent.name}: entrypoint {program} is never installed"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_runs_as_numeric_non_root_user(dockerfile):
    users = [rest for word, rest in instructions(dockerfile) if word == "USER"]
    assert users, "no USER: the image would run as root"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0, "runAsNonRoot can only be verified for a numeric UID"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_base_images_are_pinned(dockerfile):
    ins = instructions(dockerfile)
    args = build_args(ins)
    for word, rest in ins:
        if word != "FROM":
            continue
        image = rest.split()[0]
        image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image)
        if image == "build" or ":" not in image:
            assert image in {r.split()[-1] for w, r in ins if w == "FROM" and " AS " in r.upper()} or ":" in image, image
            continue
        tag = image.rsplit(":", 1)[1]
        assert tag != "latest" and re.search(r"\d", tag), f"{image}: pin a version"


def test_ascend_image_uses_the_cpu_profiles_mindspore_pair():
    """One definition of the stages: the NPU image runs the same MindSpore and
    MindFormers the CPU profile is tested with."""
    args = build_args(instructions(IMAGES / "pipeline-ascend" / "Dockerfile"))
    cpu_extra = tomllib.loads((REPO / "pipeline" / "pyproject.toml").read_text())["project"]["optional-dependencies"]["cpu"]
    assert f"mindspore=={args['MINDSPORE_VERSION']}" in cpu_extra
    assert f"mindformers=={args['MINDFORMERS_VERSION']}" in cpu_extra
    assert "cann" in args["CANN_IMAGE"] and "9.0.0" in args["CANN_IMAGE"]


def test_ascend_wrapper_loads_cann_env_and_passes_arguments(tmp_path):
    """The wrapper that stands in for mathtune-pipeline: sources set_env.sh
    when present and hands every argument on unchanged."""
    wrapper = IMAGES / "pipeline-ascend" / "mathtune-pipeline.sh"
    assert subprocess.run(["bash", "-n", str(wrapper)]).returncode == 0
    fake = tmp_path / "real"
    fake.write_text('#!/bin/sh\nprintf "%s|" "$@"\necho "ASCEND=${ASCEND_HOME_PATH:-unset}"\n')
    fake.chmod(0o755)
    # A stand-in for CANN's set_env.sh: it exports what the toolkit's does, and reads an unset
    # variable as the real one does (the wrapper must relax `set -u` around it).
    set_env = tmp_path / "set_env.sh"
    set_env.write_text('export ASCEND_HOME_PATH=/usr/local/Ascend/ascend-toolkit/latest\n'
                       'export LD_LIBRARY_PATH="/cann/lib64:${LD_LIBRARY_PATH}"\n')
    command = ["bash", str(wrapper), "train", "--spec", "/etc/mathtune/spec.json", "a b"]
    base_env = {"MATHTUNE_REAL_PIPELINE": str(fake), "PATH": "/usr/bin:/bin"}
    loaded = subprocess.run(command, env={**base_env, "MATHTUNE_CANN_SET_ENV": f"{tmp_path}/absent.sh {set_env}"},
                            capture_output=True, text=True, check=True).stdout
    assert loaded == "train|--spec|/etc/mathtune/spec.json|a b|ASCEND=/usr/local/Ascend/ascend-toolkit/latest\n"
    # Without CANN (the CPU stand-in image) the arguments still pass and nothing is loaded.
    bare = subprocess.run(command, env={**base_env, "MATHTUNE_CANN_SET_ENV": f"{tmp_path}/absent.sh"},
                          capture_output=True, text=True, check=True).stdout
    assert bare == "train|--spec|/etc/mathtune/spec.json|a b|ASCEND=unset\n"
