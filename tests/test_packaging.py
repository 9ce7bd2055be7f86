"""pip is tested: the wheel holds the zoo, installs into a fresh virtual environment, and works by name
from a folder that is not the repository.

Fast on purpose: `pip wheel --no-deps --no-build-isolation` from a copy of the sources (the checkout is
not written to), a venv without pip whose only view of the installed dependencies (torch, pydantic, ...)
is a .pth line to this interpreter's site-packages (a path, so the .pth files there - the editable
install of netspec - are not run), PYTHONPATH cleared, and the commands run from an empty folder.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import netspec

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    base = tmp_path_factory.mktemp("wheel")
    src = base / "src"
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    shutil.copytree(ROOT / "netspec", src / "netspec", ignore=skip)
    shutil.copytree(ROOT / "specs", src / "specs", ignore=skip)
    (src / "docs").mkdir()
    shutil.copy(ROOT / "docs" / "netspec.schema.json", src / "docs")
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src)
    dist = base / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist),
                    str(src)], check=True, capture_output=True, timeout=120)
    wheel = next(dist.glob("netspec-*.whl"))
    env_dir = base / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    py = env_dir / "bin" / "python"
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "NETSPEC_DEBUG")}
    # before the .pth exists: pip would see the checkout's editable install through it and skip the wheel
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "--no-index", "-q",
                    str(wheel)], check=True, capture_output=True, timeout=120, env=env)
    Path(site, "_shared_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    work = base / "elsewhere"
    work.mkdir()
    env["PATH"] = f"{env_dir / 'bin'}{os.pathsep}{env.get('PATH', '')}"

    def run(program: str, *args: str) -> subprocess.CompletedProcess:  # python or netspec of the venv
        return subprocess.run([str(env_dir / "bin" / program), *args], cwd=work, env=env, capture_output=True,
                              text=True, timeout=300)

    return wheel, env_dir, work, run


def test_wheel_holds_the_zoo_blocks_keys_and_schema_once(installed):
    wheel = installed[0]
    names = zipfile.ZipFile(wheel).namelist()
    for spec in ROOT.glob("specs/*.yaml"):
        assert f"netspec/specs/{spec.name}" in names
    assert "netspec/blocks/mobile.yaml" in names
    assert "netspec/reference_keys/torchvision/resnet50.keys" in names
    assert "netspec/docs/netspec.schema.json" in names
    assert not [n for n in names if n.startswith("netspec/docs/") and not n.endswith(".json")]
    meta = next(n for n in names if n.endswith("METADATA"))
    text = zipfile.ZipFile(wheel).read(meta).decode()
    assert "Requires-Dist: numpy" in text and "Provides-Extra: train" in text


def test_installed_wheel_works_by_name_from_another_folder(installed):
    _, env_dir, work, run = installed
    (work / "my.yaml").write_text("placeholder")  # replaced below by `netspec show`
    # independent commands, started together (each is mostly interpreter and torch start-up)
    jobs = {
        "where": ("python", "-c", "import netspec; print(netspec.__file__); print(len(netspec.list_models())); "
                                  "m = netspec.build('resnet18', num_classes=10); "
                                  "print(sum(p.numel() for p in m.parameters()))"),
        "names": ("netspec", "list", "--names"),
        "listed": ("netspec", "list", "mobilenet_v2*"),  # with the analysis: params, MACs
        "built": ("netspec", "build", "efficientnet_b3", "--json"),
        "svg": ("netspec", "render", "mobilenet_v2", "-o", "x.svg"),
        "shown": ("netspec", "show", "resnet50"),
        "typo": ("netspec", "build", "mobilenet_v4"),
    }
    with ThreadPoolExecutor(max_workers=4) as pool:
        done = {k: pool.submit(run, *cmd) for k, cmd in jobs.items()}
        r = {k: f.result() for k, f in done.items()}
    for k in jobs:
        if k != "typo":
            assert r[k].returncode == 0, (k, r[k].stderr)

    file, count, params = r["where"].stdout.split()
    assert Path(file).is_relative_to(env_dir), "the test must see the installed wheel, not the checkout"
    assert int(count) == len(netspec.list_models()) > 100
    assert r["names"].stdout.split() == netspec.list_models()
    rows = {line.split()[0]: line for line in r["listed"].stdout.splitlines()[2:]}
    assert "3.505 M" in rows["mobilenet_v2"] and "300.774 M" in rows["mobilenet_v2"]
    assert json.loads(r["built"].stdout)["params"] == 12_233_232  # torchvision efficientnet_b3
    assert "NumPy" not in r["built"].stderr
    assert (work / "x.svg").read_text().lstrip().startswith(("<?xml", "<svg"))
    assert int(params) == 11_181_642  # torchvision resnet18(num_classes=10)

    (work / "my.yaml").write_text(r["shown"].stdout)
    first = r["shown"].stdout.splitlines()[0]
    schema = Path(first.split("$schema=file://", 1)[1])
    assert schema.is_file() and schema.is_relative_to(env_dir)
    ok = run("netspec", "validate", "my.yaml")
    assert ok.returncode == 0, ok.stderr

    typo = r["typo"]
    assert typo.returncode == 2 and "did you mean" in typo.stderr and "Traceback" not in typo.stderr
