"""Zip a built layer folder reproducibly: sorted entries, fixed timestamps, deflate level 9.

Usage: ``python -m devkit.layerzip <folder> <zip>``; the zip holds the folder's
contents (``python/...``), as Lambda expects. Standard library only, so it
runs with the machine's Python before any virtual environment exists.
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

_EPOCH_1980 = (1980, 1, 1, 0, 0, 0)


def zip_folder(folder: Path, target: Path) -> int:
    """Write ``target`` from the files under ``folder``; return its size in bytes."""
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for path in files:
            info = zipfile.ZipInfo(path.relative_to(folder).as_posix(), _EPOCH_1980)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes(), compresslevel=9)
    return target.stat().st_size


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    zip_folder(Path(sys.argv[1]), Path(sys.argv[2]))
