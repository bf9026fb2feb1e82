"""`sam build` of the real template, without Docker: the layer must come out for
Lambda's arm64 (aarch64) python3.13, whatever the machine that builds it.

SAM's python builder downloads manylinux aarch64 wheels with pip when the build
architecture differs from the machine's, so this needs PyPI and the `sam` CLI. The
CLI is looked for in $SAM_CLI, then on PATH, then in .venv-sam/ (its own virtualenv:
its pins conflict with the project's); without it the tests skip and say why.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EM_AARCH64 = 0xB7
SHARED_OBJECT = re.compile(r"\.so(\.\d+)*$")


def _sam_cli() -> str | None:
    candidates = [
        os.environ.get("SAM_CLI"),
        shutil.which("sam"),
        str(ROOT / ".venv-sam" / "bin" / "sam"),
    ]
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)


def elf_machine(path: Path) -> int:
    """The ELF header's e_machine of a shared object (0xB7 aarch64, 0x3E x86-64)."""
    header = path.read_bytes()[:20]
    assert header[:4] == b"\x7fELF", f"{path} is not an ELF file"
    byteorder = "little" if header[5] == 1 else "big"
    return int.from_bytes(header[18:20], byteorder)


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The artifacts of `sam build` into a fresh folder (no cache)."""
    sam = _sam_cli()
    if sam is None:
        pytest.skip(
            "sam CLI not installed: put `sam` on PATH, set SAM_CLI, or install aws-sam-cli "
            "into .venv-sam (python3.13 -m venv .venv-sam && .venv-sam/bin/pip install "
            "aws-sam-cli)"
        )
    python_dir = Path(sys.executable).parent
    if not (python_dir / "python3.13").exists():
        pytest.skip(f"SAM's python3.13 builder needs a `python3.13` on PATH; none in {python_dir}")
    out = tmp_path_factory.mktemp("sam-build")
    env = os.environ | {
        "PATH": os.pathsep.join([str(python_dir), os.environ.get("PATH", "")]),
        "SAM_CLI_TELEMETRY": "0",
    }
    command = [
        sam,
        "build",
        "--template-file",
        str(ROOT / "template.yaml"),
        "--base-dir",
        str(ROOT),
        "--build-dir",
        str(out / "build"),
        "--cache-dir",
        str(out / "cache"),
        "--no-cached",
        "--parallel",
    ]
    result = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900, check=False
    )
    assert result.returncode == 0, f"sam build failed:\n{(result.stdout + result.stderr)[-4000:]}"
    return out / "build"


@pytest.fixture(scope="module")
def layer_python(build_dir: Path) -> Path:
    return build_dir / "SharedLayer" / "python"


def test_layer_psycopg_binary_is_aarch64(layer_python: Path) -> None:
    objects = sorted((layer_python / "psycopg_binary").glob("*.so"))
    assert objects, (
        f"no psycopg_binary extension in {layer_python}: SAM installs the requirements.txt "
        "found in the layer's ContentUri; is it there?"
    )
    for so in objects:
        assert elf_machine(so) == EM_AARCH64, f"{so.name}: e_machine {elf_machine(so):#x}"


def test_no_shared_object_in_the_layer_is_x86_64(layer_python: Path) -> None:
    objects = [
        p for p in layer_python.rglob("*.so*") if p.is_file() and SHARED_OBJECT.search(p.name)
    ]
    assert objects
    wrong = [str(p.relative_to(layer_python)) for p in objects if elf_machine(p) != EM_AARCH64]
    assert wrong == []


def test_layer_puts_practice_where_lambda_imports_it(layer_python: Path) -> None:
    # Lambda puts /opt/python on sys.path: the package must be right under python/.
    assert (layer_python / "practice" / "__init__.py").is_file()
    assert not (layer_python / "python").exists(), "layer content nested one level too deep"
    for package in ("fastapi", "mangum", "psycopg", "psycopg_pool", "pydantic_core"):
        assert (layer_python / package).is_dir(), f"{package} missing from the layer"


def test_every_module_of_the_layer_ships_bytecode_lambda_can_use(layer_python: Path) -> None:
    """Lambda cannot write bytecode (/opt is read-only) and SAM zips files without
    their times, so only hash-based bytecode that is not checked against its
    source saves a cold start its compiling (PEP 552: flags 0b01)."""
    modules = sorted(layer_python.rglob("*.py"))
    assert len(modules) > 500  # the dependencies, not only practice
    without = []
    for module in modules:
        compiled = module.parent / "__pycache__" / f"{module.stem}.cpython-313.pyc"
        flags = int.from_bytes(compiled.read_bytes()[4:8], "little") if compiled.exists() else None
        if flags != 0b01:
            without.append(f"{module.relative_to(layer_python)}: {flags}")
    assert without == []


def test_functions_ship_their_entry_module_only(build_dir: Path) -> None:
    app = build_dir / "AttemptsFunction"
    assert (app / "app.py").is_file()
    # The function's zip holds its thin entry module; dependencies live in the layer.
    assert not (app / "fastapi").exists()
    assert (build_dir / "template.yaml").is_file()
