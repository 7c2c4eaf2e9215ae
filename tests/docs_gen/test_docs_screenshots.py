"""README shows the screenshots `make screenshots` draws, and every one of them is there."""

import re
import struct
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "docs" / "screenshots"
EXPECTED = {"dagster-lineage-collapsed", "dagster-lineage-expanded", "dagster-asset", "docs-landing",
            "docs-flow", "docs-flow-phone", "docs-landscape-40", "docs-landscape-200"}


def _size(png: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    head = png.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", png
    return struct.unpack(">II", head[16:24])


def test_screenshots_exist_and_readme_references_each() -> None:
    """Each screenshot is a PNG at its window size, README links every one, and the Makefile redraws them."""
    readme = (ROOT / "README.md").read_text()
    linked = set(re.findall(r"\(docs/screenshots/([\w-]+)\.png\)", readme))
    on_disk = {p.stem for p in SHOTS.glob("*.png")}
    assert linked == on_disk == EXPECTED
    for name in EXPECTED:
        assert _size(SHOTS / f"{name}.png") == ((390, 844) if name.endswith("phone") else (1600, 1000)), name
    assert "benchmarks/screenshots.py --out docs/screenshots" in (ROOT / "Makefile").read_text()
