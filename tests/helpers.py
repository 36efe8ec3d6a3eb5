"""Small helpers shared by the test packages (fixtures live in conftest.py files)."""
import tempfile
from pathlib import Path

from launcher.stack import free_port  # noqa: F401 (the tests' one way to get a port)

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "tests" / "artifacts"
# Debian's Chromium (a browser download by Playwright is not possible here), headless and
# quiet: no sandbox as root, no GPU, no background traffic to Google.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync",
                 "--disable-quic"]


def make_state_dir(prefix):
    """A temporary folder that system users (postgres, mosquitto) can traverse.

    pytest's own tmp_path lives under a 0700 folder of the invoking user, which a server
    dropped to its own account cannot enter.
    """
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path
