"""Where the emulator tests find their pinned npm material, and its check.

`make reference` runs `npm ci` on tests/emulator/node/ (package.json + package-lock.json, exact
versions) into the git-ignored .cache/emulator-node/, then runs this file, which checks the spec's
sha256. Nothing here needs a network or any file outside the repository.

    python tests/emulator/npm_reference.py   # exit 0 when the spec is there and matches
"""

from __future__ import annotations

import hashlib
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NODE_DIR = ROOT / ".cache" / "emulator-node"
NODE_MODULES = NODE_DIR / "node_modules"
#: Twilio's OpenAPI spec for API v2010, as shipped in @twilio-alpha/mcp 0.7.0 (pinned in the lock).
SPEC_PATH = NODE_MODULES / "@twilio-alpha" / "mcp" / "twilio-oai" / "spec" / "json" / "twilio_api_v2010.json"
SPEC_SHA256 = "475b69553e34e797af05d34679cdad3bc3b8b4b8b92e6ac044fa6ebc255bf052"
CONFORMANCE_SCRIPT = Path(__file__).resolve().parent / "node" / "conformance.js"

MISSING = "run `make reference` (it installs Node/npm when missing and the pinned npm packages into .cache/emulator-node)"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def spec_path() -> Path:
    """The verified spec file; RuntimeError naming the make target when absent or altered."""
    if not SPEC_PATH.is_file():
        raise RuntimeError(f"Twilio's OpenAPI spec is not installed at {SPEC_PATH}: {MISSING}")
    actual = sha256(SPEC_PATH)
    if actual != SPEC_SHA256:
        raise RuntimeError(f"{SPEC_PATH} has sha256 {actual}, expected {SPEC_SHA256}: remove .cache/emulator-node and {MISSING}")
    return SPEC_PATH


def node() -> str:
    """The `node` executable; RuntimeError naming the make target when absent."""
    found = shutil.which("node")
    if found is None:
        raise RuntimeError(f"Node.js is not installed: {MISSING}")
    if not (NODE_MODULES / "twilio" / "package.json").is_file():
        raise RuntimeError(f"the Node SDK is not installed in {NODE_MODULES}: {MISSING}")
    return found


if __name__ == "__main__":
    try:
        print(f"ok: {spec_path().relative_to(ROOT)} (sha256 {SPEC_SHA256[:12]}…)")
    except RuntimeError as exc:
        sys.exit(str(exc))
