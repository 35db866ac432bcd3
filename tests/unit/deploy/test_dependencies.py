"""Reproducible installs and self-contained tests: every version pinned, and the candles bundled in the repository."""

import re
import tomllib

from tests.support.infrastructure import CANDLES, ROOT, open_candles

PIN = re.compile(r"^(?P<name>[A-Za-z0-9._-]+)(\[[a-z0-9,_-]+\])?==(?P<version>[^\s;#]+)$")


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def constraints() -> dict[str, str]:
    lines = [line for line in (ROOT / "constraints.txt").read_text().splitlines() if line and not line.startswith("#")]
    pins = {}
    for line in lines:
        match = PIN.match(line)
        assert match, f"constraints.txt has a line that is not name==version: {line!r}"
        pins[normalized(match["name"])] = match["version"]
    return pins


def direct_pins() -> dict[str, str]:
    """name → version of every dependency the packages and requirements-dev.txt declare."""
    declared = [line.strip() for line in (ROOT / "requirements-dev.txt").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    for pyproject in [ROOT / "contracts" / "pyproject.toml", ROOT / "web" / "pyproject.toml",
                      *(ROOT / "services").glob("*/pyproject.toml")]:
        declared += tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    pins = {}
    for requirement in declared:
        if requirement.startswith("bitfolio-"):
            continue  # the workspace's own packages, installed editable
        match = PIN.match(requirement)
        assert match, f"{requirement!r} is not pinned as name==version"
        pins[normalized(match["name"])] = match["version"]
    return pins


def test_constraints_pin_every_declared_dependency_at_the_declared_version() -> None:
    pinned = constraints()
    for name, version in direct_pins().items():
        assert pinned.get(name) == version, f"{name}=={version} is declared but constraints.txt has {pinned.get(name)}"
    assert len(pinned) > len(direct_pins()), "the transitive dependencies are not pinned"
    assert "testcontainers" in pinned and "pika" in pinned


def test_make_install_and_every_image_install_with_the_constraints() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "pip install -q -c constraints.txt -r requirements-dev.txt" in makefile
    for dockerfile in (ROOT / "deploy").glob("*.Dockerfile"):
        assert "pip install -c /src/constraints.txt" in dockerfile.read_text(), dockerfile.name


def test_the_bundled_candles_are_the_2024_hours_the_tests_read() -> None:
    assert CANDLES.is_relative_to(ROOT)
    with open_candles() as handle:
        header = handle.readline().strip()
        rows = handle.readlines()
    assert header == "date,unix,low,high,open,close,volume,vol_fiat"
    assert len(rows) == 6115
    assert "1704067200" in rows[1] and "42288.58" in rows[1]  # 2024-01-01 00:00 UTC, open 42,288.58
