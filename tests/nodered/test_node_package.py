"""Node-RED's side: the node package's own tests (node's test runner), here given a real
PostgreSQL so that the store is tested against the actual schema, not skipped, and the
nodes' statements are run as Node-RED's own database role."""
import os
import subprocess

from tests.helpers import ROOT


def test_nodered_package_tests_pass_against_a_real_database(fresh_db, pg_cluster):
    url = "postgresql://{user}:{password}@{host}:{port}/{dbname}".format(**fresh_db)
    # Node-RED's own role (a member of octopus_flows), for test/database-role.test.js
    nodered_url = "postgresql://{user}:{password}@{host}:{port}/{dbname}".format(
        **pg_cluster.logins["nodered"], dbname=fresh_db["dbname"])
    result = subprocess.run(["npm", "test", "--silent"], cwd=ROOT / "nodered", text=True,
                            env={**os.environ, "OCTOPUS_TEST_PG": url,
                                 "OCTOPUS_TEST_PG_NODERED": nodered_url},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
    summary = "\n".join(line for line in result.stdout.splitlines()
                        if line.startswith(("ℹ", "# ")))
    assert result.returncode == 0, result.stdout[-6000:]
    assert "skipped 0" in summary or "# skip 0" in summary, summary
