"""Supply chain (doc/security.md): no medium or high bandit finding in our Python, no known
vulnerability in our pinned Python packages, no high or critical advisory in Node-RED's
runtime packages, unless an exception says why it does not apply. An audit service that
cannot be reached skips its check with the reason; it never passes it. The second half
shows that each check fails on a real finding."""
import json
import textwrap

import pytest

from tests.supply_chain import audits


@pytest.fixture(scope="module")
def exceptions():
    return audits.load_exceptions()


def audited(run, *args):
    """The tool's report, or a skip saying why its service could not answer."""
    try:
        return run(*args)
    except audits.Unavailable as exc:
        pytest.skip(str(exc))


def test_every_exception_says_what_why_and_who(exceptions):
    assert audits.exception_problems(exceptions) == []


def test_bandit_finds_nothing_unexplained_in_our_python():
    problems = audits.judge_bandit(audits.bandit_findings(), audits.nosec_comments())
    assert not problems, "bandit:\n" + "\n".join(problems)


def test_pinned_python_packages_have_no_known_vulnerability(exceptions):
    problems, unaudited = audits.judge_pip_audit(audited(audits.pip_audit), exceptions)
    assert not problems, "pip-audit:\n" + "\n".join(problems)
    if unaudited:
        pytest.skip(unaudited)


def test_nodered_runtime_packages_have_no_high_or_critical_advisory(exceptions):
    problems = audits.judge_npm_audit(audited(audits.npm_audit), exceptions)
    assert not problems, "npm audit:\n" + "\n".join(problems)


# -- each check can fail -------------------------------------------------------------------------

def exception(tool, package, advisory):
    return {"tool": tool, "package": package, "id": advisory, "reason": "test",
            "decided": "test, 2026-11-22"}


def test_bandit_check_fails_on_findings_and_on_unexplained_or_stale_nosec(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "found.py").write_text(textwrap.dedent("""\
        import subprocess
        def list_dir(name):
            return subprocess.call("ls " + name, shell=True)
        def find(conn, name):
            return conn.execute(f"SELECT * FROM devices WHERE name = '{name}'")
        """))
    (tmp_path / "pkg" / "excused.py").write_text(textwrap.dedent("""\
        import subprocess
        def run(command):
            subprocess.call(command, shell=True)  # nosec B602
            subprocess.call(command, shell=True)  # nosec B602  # commands are constants
        LIMIT = 1  # nosec B608  # nothing here is SQL
        """))
    problems = "\n".join(audits.judge_bandit(audits.bandit_findings(("pkg",), tmp_path),
                                             audits.nosec_comments(("pkg",), tmp_path)))
    assert "pkg/found.py:3: B602 (high severity" in problems
    assert "pkg/found.py:5: B608 (medium severity" in problems
    assert "pkg/excused.py:3: a `# nosec` names the test and says why" in problems
    assert "pkg/excused.py:4" not in problems
    assert "pkg/excused.py:5: stale `# nosec B608`" in problems


def test_pip_audit_reports_a_known_vulnerability(tmp_path):
    # Flask 2.2.4: session cookie cached by proxies, fixed in 2.2.5
    (tmp_path / "requirements.txt").write_text("flask==2.2.4\n")
    problems, unaudited = audits.judge_pip_audit(
        audited(audits.pip_audit, ("requirements.txt",), tmp_path), [])
    if unaudited and not problems:
        pytest.skip(unaudited)
    assert any("CVE-2023-30861" in problem for problem in problems), problems


def test_pip_audit_judgement():
    report = {"dependencies": [
        {"name": "flask", "version": "2.2.4", "vulns": [
            {"id": "PYSEC-2023-62", "fix_versions": ["2.2.5", "2.3.2"],
             "aliases": ["CVE-2023-30861", "GHSA-m2qf-hxjv-5gpq"]}]},
        {"name": "requests", "version": "2.34.2", "vulns": []}]}
    assert audits.judge_pip_audit(report, []) == (
        ["flask: PYSEC-2023-62 / CVE-2023-30861 / GHSA-m2qf-hxjv-5gpq (fixed in 2.2.5, 2.3.2)"],
        None)
    accepted = exception("pip-audit", "Flask", "GHSA-m2qf-hxjv-5gpq")
    assert audits.judge_pip_audit(report, [accepted]) == ([], None)
    stale = exception("pip-audit", "requests", "CVE-2024-35195")
    problems, _ = audits.judge_pip_audit(report, [accepted, stale])
    assert len(problems) == 1 and problems[0].startswith("stale exception"), problems


def test_npm_audit_reports_a_known_advisory(tmp_path):
    # lodash 4.17.20: command injection in template (high), fixed in 4.17.21
    (tmp_path / "package.json").write_text(json.dumps(
        {"name": "audit-probe", "version": "1.0.0", "dependencies": {"lodash": "4.17.20"}}))
    (tmp_path / "package-lock.json").write_text(json.dumps({
        "name": "audit-probe", "version": "1.0.0", "lockfileVersion": 3, "requires": True,
        "packages": {
            "": {"name": "audit-probe", "version": "1.0.0",
                 "dependencies": {"lodash": "4.17.20"}},
            "node_modules/lodash": {
                "version": "4.17.20",
                "resolved": "https://registry.npmjs.org/lodash/-/lodash-4.17.20.tgz"}}}))
    problems = audits.judge_npm_audit(audited(audits.npm_audit, tmp_path), [])
    assert any("GHSA-35jh-r3h4-6jhm" in problem for problem in problems), problems


def test_npm_audit_judgement():
    def advisory(name, source, ghsa, severity):
        return {"source": source, "name": name, "dependency": name, "title": f"{name} flaw",
                "url": f"https://github.com/advisories/{ghsa}", "severity": severity,
                "range": "<9"}
    report = {"auditReportVersion": 2, "vulnerabilities": {
        "express": {"name": "express", "severity": "high", "via": ["body-parser"]},
        "body-parser": {"name": "body-parser", "severity": "high",
                        "via": [advisory("body-parser", 1099520, "GHSA-qwcr-r2fm-qrc7", "high")]},
        "cookie": {"name": "cookie", "severity": "low",
                   "via": [advisory("cookie", 1103907, "GHSA-pxg6-pf52-xh8x", "low")]}}}
    assert audits.judge_npm_audit(report, []) == [
        "body-parser: GHSA-qwcr-r2fm-qrc7 / 1099520 (high) body-parser flaw"]
    accepted = exception("npm-audit", "body-parser", "GHSA-qwcr-r2fm-qrc7")
    assert audits.judge_npm_audit(report, [accepted]) == []
    stale = exception("npm-audit", "express", "GHSA-rv95-896h-c2vc")
    problems = audits.judge_npm_audit(report, [accepted, stale])
    assert len(problems) == 1 and problems[0].startswith("stale exception"), problems
