"""Small helpers shared by the test packages (fixtures live in conftest.py files)."""
import socket
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "tests" / "artifacts"


def free_port():
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_state_dir(prefix):
    """A temporary folder that system users (postgres, mosquitto) can traverse.

    pytest's own tmp_path lives under a 0700 folder of the invoking user, which a server
    dropped to its own account cannot enter.
    """
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path
