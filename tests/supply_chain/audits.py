"""The supply-chain checks: bandit over our Python, pip-audit over our pinned Python
packages, npm audit over Node-RED's lock file. Each runner returns the tool's report; each
judge returns what fails the run, as one line per problem (doc/security.md, Supply chain)."""
import json
import re
import subprocess
import sys
import tokenize
import tomllib
import urllib.request

from tests.helpers import ROOT

# Accepted findings of pip-audit and npm audit; bandit's are `# nosec` comments in the code.
EXCEPTIONS_FILE = ROOT / ".ci" / "audit-exceptions.toml"
EXCEPTION_FIELDS = ("tool", "package", "id", "reason", "decided")
TOOLS = ("pip-audit", "npm-audit")

# Our Python as it runs: not tests/, whose asserts, fixed passwords and shell commands are
# a test's tools, not a door into the platform.
BANDIT_PATHS = ("webapp", "simulators", "launcher", "bench")
NPM_FAILING = ("high", "critical")

# `# nosec B608  # why it does not apply`: test ids, then the reason after a second `#`
# (bandit reads every word before it as a test name).
NOSEC = re.compile(r"#\s*nosec\b:?(?P<ids>[^#]*)(?:#(?P<reason>.*))?")
# How requests and pip-audit say that PyPI could not be reached at all.
UNREACHABLE = re.compile(r"requests\.exceptions\.\w+|Could not connect|ConnectionError|timed out")


class Unavailable(Exception):
    """An audit service could not answer from this machine: the check is skipped, not passed."""


def run(args, cwd, timeout=120):
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout)


# -- exceptions --------------------------------------------------------------------------------

def load_exceptions(path=EXCEPTIONS_FILE):
    """The `[[exception]]` entries of the exceptions file."""
    return tomllib.loads(path.read_text()).get("exception", [])


def exception_problems(exceptions):
    """Entries that do not say what they accept, why and who decided it."""
    problems = []
    for n, entry in enumerate(exceptions, 1):
        missing = [f for f in EXCEPTION_FIELDS if not str(entry.get(f, "")).strip()]
        if missing:
            problems.append(f"exception #{n} ({entry.get('id')}): missing {', '.join(missing)}")
        if entry.get("tool") not in TOOLS:
            problems.append(f"exception #{n} ({entry.get('id')}): tool must be one of {TOOLS}")
    return problems


def canonical(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def judge_advisories(tool, advisories, exceptions, failing=lambda advisory: True):
    """Problems among `advisories` ({package, ids, detail}): each failing one that no
    exception of `tool` accepts, and each exception of `tool` that accepts none (stale)."""
    mine = [e for e in exceptions if e["tool"] == tool]

    def accepts(entry, advisory):
        return (canonical(entry["package"]) == canonical(advisory["package"])
                and entry["id"] in advisory["ids"])

    problems = [f"{a['package']}: {' / '.join(a['ids'])} {a['detail']}"
                for a in advisories
                if failing(a) and not any(accepts(e, a) for e in mine)]
    problems += [f"stale exception in {EXCEPTIONS_FILE.name}: {e['package']} {e['id']} matches "
                 f"no finding of {tool} any more; delete it"
                 for e in mine if not any(accepts(e, a) for a in advisories)]
    return problems


# -- bandit ------------------------------------------------------------------------------------

def bandit_fails(finding):
    """High severity, and medium severity that bandit is not itself unsure of: its low
    confidence marks SQL-looking strings built from constants away from any execute().
    Low severity (subprocess imported, random numbers) is noise here."""
    severity, confidence = finding["issue_severity"], finding["issue_confidence"]
    return severity == "HIGH" or (severity == "MEDIUM" and confidence != "LOW")


def bandit_findings(paths=BANDIT_PATHS, cwd=ROOT):
    """Bandit's findings over `paths`, every severity, `# nosec` comments ignored:
    judge_bandit weighs them, so that a stale or unexplained one shows."""
    proc = run([sys.executable, "-m", "bandit", "-r", "-q", "-f", "json", "--ignore-nosec",
                *paths], cwd)
    report = json.loads(proc.stdout)
    assert not report["errors"], f"bandit could not read: {report['errors']}"
    return report["results"]


def nosec_comments(paths=BANDIT_PATHS, cwd=ROOT):
    """{(file, line): (test ids, reason)} of every `# nosec` comment under `paths`."""
    comments = {}
    for path in paths:
        for file in sorted((cwd / path).rglob("*.py")):
            with tokenize.open(file) as source:
                for token in tokenize.generate_tokens(source.readline):
                    match = token.type == tokenize.COMMENT and NOSEC.match(token.string)
                    if match:
                        comments[(str(file.relative_to(cwd)), token.start[0])] = (
                            set(re.findall(r"B\d{3}", match["ids"])),
                            (match["reason"] or "").strip())
    return comments


def judge_bandit(findings, comments):
    """Failing findings (bandit_fails) without a `# nosec` for their test on one of their
    lines, `# nosec` comments without a test id or a reason, and those that excuse nothing."""
    problems, used = [], set()
    for f in findings:
        lines = [(f["filename"], n) for n in f["line_range"]
                 if f["test_id"] in comments.get((f["filename"], n), ((), ""))[0]]
        used.update((where, f["test_id"]) for where in lines)
        if not lines and bandit_fails(f):
            problems.append(f"{f['filename']}:{f['line_number']}: {f['test_id']} "
                            f"({f['issue_severity'].lower()} severity, "
                            f"{f['issue_confidence'].lower()} confidence) {f['issue_text']}")
    for (file, line), (ids, reason) in sorted(comments.items()):
        if not ids or not reason:
            problems.append(f"{file}:{line}: a `# nosec` names the test and says why: "
                            f"`# nosec B608  # the SQL is made of constants`")
        problems += [f"{file}:{line}: stale `# nosec {test_id}`: bandit finds no {test_id} "
                     f"there any more; delete it"
                     for test_id in sorted(ids) if ((file, line), test_id) not in used]
    return problems


# -- pip-audit ---------------------------------------------------------------------------------

def requirement_files(name="requirements-dev.txt", cwd=ROOT):
    """`name` and every file it includes with `-r`, relative to `cwd`: the test set, which
    includes the runtime set."""
    files = [name]
    for line in (cwd / name).read_text().splitlines():
        include = re.match(r"\s*(?:-r|--requirement)[\s=]+(\S+)", line)
        if include:
            files += requirement_files(
                str(((cwd / name).parent / include[1]).relative_to(cwd)), cwd)
    return list(dict.fromkeys(files))


def pip_audit(files=None, cwd=ROOT):
    """pip-audit's JSON report on pinned requirement `files` (requirement_files() unless given).
    Every package is pinned, so no resolver runs (--no-deps, --disable-pip); pip-audit then
    does not follow `-r`, so every file is named. Raises Unavailable when PyPI cannot be
    reached."""
    args = [sys.executable, "-m", "pip_audit", "--no-deps", "--disable-pip", "--format", "json",
            "--aliases", "on", "--desc", "off", "--progress-spinner", "off"]
    for name in files or requirement_files(cwd=cwd):
        args += ["--requirement", name]
    proc = run(args, cwd)
    if not proc.stdout.strip():
        unreachable = [line for line in proc.stderr.splitlines() if UNREACHABLE.search(line)]
        if unreachable:
            raise Unavailable(f"pip-audit could not reach PyPI: {unreachable[-1][:300]}")
        raise AssertionError(f"pip-audit failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout)


def pypi_version_lookup_broken(name, version):
    """Why PyPI's per-release JSON, which pip-audit asks, fails for a release that PyPI
    lists; None when the release does not exist (then the pin is wrong)."""
    try:
        with urllib.request.urlopen(f"https://pypi.org/pypi/{name}/json", timeout=15) as r:
            releases = json.load(r)["releases"]
    except (OSError, ValueError) as exc:
        return f"https://pypi.org/pypi/{name}/json failed too: {exc}"
    if version in releases:
        return (f"https://pypi.org/pypi/{name}/{version}/json answers 404 although "
                f"https://pypi.org/pypi/{name}/json lists {name} {version}")
    return None


def judge_pip_audit(report, exceptions):
    """(problems, why some pins could not be audited or None). Every known vulnerability
    fails: PyPI's advisories carry no severity."""
    problems, unaudited, advisories = [], {}, []
    for dep in report["dependencies"]:
        if "skip_reason" in dep:
            pin = re.search(r": (\S+) \((\S+)\)$", dep["skip_reason"])
            broken = pin and pypi_version_lookup_broken(*pin.groups())
            if broken:
                unaudited[canonical(dep["name"])] = broken
            else:
                problems.append(f"{dep['name']}: not audited: {dep['skip_reason']}")
            continue
        advisories += [{"package": dep["name"], "ids": [v["id"], *v.get("aliases", [])],
                        "detail": "(fixed in " + (", ".join(v["fix_versions"]) or "no release")
                        + ")"} for v in dep["vulns"]]
    # whether an exception of a package not audited is stale cannot be known
    exceptions = [e for e in exceptions if canonical(e["package"]) not in unaudited]
    problems += judge_advisories("pip-audit", advisories, exceptions)
    why = None
    if unaudited:
        why = (f"pip-audit could not audit {len(unaudited)} of {len(report['dependencies'])} "
               f"pins: {next(iter(unaudited.values()))}")
    return problems, why


# -- npm audit ---------------------------------------------------------------------------------

def npm_audit(cwd=ROOT / "nodered"):
    """npm audit's JSON report on the runtime packages of package-lock.json. Raises
    Unavailable when the registry's audit endpoint does not answer."""
    proc = run(["npm", "audit", "--omit=dev", "--audit-level=high", "--json"], cwd)
    try:
        report = json.loads(proc.stdout)
    except ValueError:
        raise AssertionError(f"npm audit gave no report:\n{proc.stderr[-2000:]}") from None
    if "vulnerabilities" in report:
        return report
    if "message" in report:  # the audit endpoint failed: an HTTP status or the network
        raise Unavailable(f"npm audit: {report['message']}")
    raise AssertionError(f"npm audit failed: {report.get('error')}")  # e.g. no lock file


def judge_npm_audit(report, exceptions):
    """High and critical advisories that no exception accepts, and stale exceptions."""
    advisories = {}
    for package in report["vulnerabilities"].values():
        for via in package["via"]:
            if isinstance(via, dict):  # an advisory of this package; a str is a dependency
                ids = [via["url"].rsplit("/", 1)[-1], str(via["source"])]
                advisories[tuple(ids)] = {"package": via["name"], "ids": ids,
                                          "severity": via["severity"],
                                          "detail": f"({via['severity']}) {via['title']}"}
    return judge_advisories("npm-audit", list(advisories.values()), exceptions,
                            failing=lambda a: a["severity"] in NPM_FAILING)
