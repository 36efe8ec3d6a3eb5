"""What our requirements files pin, and what the packages they name pull in as installed:
every package a file's install brings must be pinned by that file or one it includes, at the
version installed, so that a fresh install gets what was tested (doc/security.md, Supply
chain). Read from the installed packages' metadata: no index is asked."""
import importlib.metadata
import re

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.helpers import ROOT

# Each file that something installs on its own: the launcher and CI (requirements*.txt at the
# root) and the two images (webapp/Dockerfile, simulators/Dockerfile).
FILES = ("requirements-dev.txt", "requirements.txt", "webapp/requirements.txt",
         "simulators/requirements.txt")
INCLUDE = re.compile(r"^-r\s+(\S+)")
# The venv's own installer, put there by `python3 -m venv` (Debian's python3-venv), not by a
# requirements file; pinning it would make every install replace it (pip-compile leaves it
# out too).
INSTALLER = {"pip", "setuptools"}


def requirements(path):
    """The requirements named by `path` (from the repository's root) and the files it
    includes (-r, from the including file's folder, as pip reads them), in order."""
    found = []
    for line in (ROOT / path).read_text().splitlines():
        line = line.split(" #")[0].strip()
        if not line or line.startswith("#") or line.startswith("--"):
            continue
        included = INCLUDE.match(line)
        if included:
            found += requirements((ROOT / path).parent / included.group(1))
        else:
            found.append(Requirement(line))
    return found


def pins(path):
    """{canonical name: version} pinned with == by `path` and the files it includes."""
    pinned = {}
    for req in requirements(path):
        versions = [s.version for s in req.specifier if s.operator == "=="]
        if versions:
            pinned[canonicalize_name(req.name)] = versions[0]
    return pinned


def pulled_in(reqs):
    """{canonical name: installed version} of `reqs` and everything they require, with
    their extras and environment markers evaluated as pip would here."""
    found, seen, todo = {}, set(), [(req, "") for req in reqs]
    while todo:
        req, extra = todo.pop()
        if req.marker and not req.marker.evaluate({"extra": extra}):
            continue
        name, extras = canonicalize_name(req.name), {""} | set(req.extras)
        if (name, frozenset(extras)) in seen:
            continue
        seen.add((name, frozenset(extras)))
        dist = importlib.metadata.distribution(req.name)
        found[name] = dist.version
        todo += [(Requirement(line), chosen) for line in dist.requires or [] for chosen in extras]
    return found


def unpinned(path):
    """Lines to add to `path` for what its install pulls in unpinned or at another version."""
    pinned = pins(path)
    return [f"{name}=={version}" for name, version in sorted(pulled_in(requirements(path)).items())
            if pinned.get(name) != version and name not in INSTALLER]
