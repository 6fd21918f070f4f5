"""docker-compose.yml is valid Compose and is the production topology docs/deploy.md describes.

No Docker engine runs where these tests run, so the file is checked against the Compose
Specification's JSON schema kept in the shared directory (``../shared/schemas/compose-spec.json``,
or ``$WH_SHARED_DIR/schemas/compose-spec.json``). A missing schema is a failure, not a skip:
a skipped check would look like a passing one.

Compose's own interpolation of ``${...}`` is redone here (``tests.topology.interpolate``), so the
values are checked as a deployment would see them, and the checks that read the file's text (no
default for a secret, no literal password in a URL, the mounts) are functions whose failures are
messages; tests plant the broken forms they must catch.
"""
from __future__ import annotations

import copy
import functools
import json
import os
import re
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

from tests.topology import MissingVariable, interpolate, interpolations

REPO_ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
DOCKERFILE = REPO_ROOT / "Dockerfile"
PROJECT_MOUNT = "/opt/project"
AIRFLOW_IMAGE = "apache/airflow:3.3.2-python3.11"

REQUIRED_SERVICES = {
    "postgres",
    "redis",
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-worker",
    "airflow-triggerer",
}
# The code the Airflow services run, mounted read-only; and the folders the pipeline writes,
# the only writable bind mounts (named volumes, like the Airflow logs, are not the checkout).
CODE = ("dags", "ingest", "pipeline", "expectations", "dbt_project", "requirements.txt")
DATA = ("landing", "warehouse", "reports")
# A variable whose name contains one of these is a secret: it must be required (``${NAME:?...}``).
SECRET_WORDS = ("PASSWORD", "SECRET", "KEY")
# Values for the required variables, as a .env would set them.
SAMPLE_ENV = {
    "AIRFLOW_FERNET_KEY": "sample-fernet-key",
    "AIRFLOW_JWT_SECRET": "sample-jwt-secret",
    "AIRFLOW_API_SECRET_KEY": "sample-api-secret-key",
    "AIRFLOW_ADMIN_USER": "sample-admin",
    "AIRFLOW_ADMIN_PASSWORD": "sample-admin-password",
    "POSTGRES_PASSWORD": "sample-postgres-password",
    "REDIS_PASSWORD": "sample-redis-password",
}
# Validator per `$schema` draft; the spec has used draft 7 and 2019-09.
VALIDATORS = {
    "draft-07": jsonschema.Draft7Validator,
    "2019-09": jsonschema.Draft201909Validator,
}


def shared_dir() -> Path:
    """The shared directory beside the repository, unless ``WH_SHARED_DIR`` names another."""
    override = os.environ.get("WH_SHARED_DIR")
    if override:
        return Path(override).expanduser().resolve()
    return Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def resolved(compose) -> dict:
    """The compose file as ``docker compose`` sees it with ``SAMPLE_ENV`` in .env."""
    return interpolated(compose, SAMPLE_ENV)


def interpolated(node, env: dict[str, str]):
    """``node`` (a parsed compose file or a part of it) with every string interpolated."""
    if isinstance(node, dict):
        return {key: interpolated(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolated(value, env) for value in node]
    return interpolate(node, env) if isinstance(node, str) else node


def strings(node, where: str = ""):
    """(where, string) for every string value of ``node``; ``where`` is its path in the file."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from strings(value, f"{where}.{key}" if where else str(key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from strings(value, f"{where}[{i}]")
    elif isinstance(node, str):
        yield where, node


@functools.cache
def compose_validator() -> jsonschema.protocols.Validator:
    """The validator for the shared Compose schema; fails the calling test if it is missing."""
    schema_path = shared_dir() / "schemas" / "compose-spec.json"
    if not schema_path.is_file():
        pytest.fail(
            f"Compose schema not found at {schema_path}: docker-compose.yml cannot be validated. "
            "Set WH_SHARED_DIR to the directory that holds schemas/compose-spec.json."
        )
    schema = json.loads(schema_path.read_text(encoding="utf-8"))
    declared = schema.get("$schema", "")
    matching = [cls for draft, cls in VALIDATORS.items() if draft in declared]
    if not matching:
        pytest.fail(f"{schema_path} declares $schema {declared!r}; expected draft-07 or 2019-09")
    validator_cls = matching[0]
    validator_cls.check_schema(schema)
    return validator_cls(schema)


def airflow_services(compose: dict) -> dict[str, dict]:
    return {name: svc for name, svc in compose["services"].items() if name.startswith("airflow-")}


def environment(service: dict) -> dict[str, str]:
    """A service's environment as a dict, whichever of the two Compose forms it uses."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def mounts(service: dict) -> dict[str, tuple[str, bool]]:
    """Container target -> (host source, read-only) of a service's volumes, short syntax
    (``SOURCE:TARGET[:ro,...]``) or long (``read_only: true``)."""
    found = {}
    for volume in service.get("volumes") or []:
        if isinstance(volume, str):
            parts = volume.split(":")
            if len(parts) == 1:  # an anonymous volume: a target alone
                parts = ["", *parts]
            source, target, *mode = parts
            found[target] = (source, "ro" in ",".join(mode).split(","))
        else:
            found[volume["target"]] = (volume.get("source", ""), bool(volume.get("read_only")))
    return found


def is_bind(source: str) -> bool:
    """A host path (bind mount), not a named volume."""
    return source.startswith((".", "/", "~"))


def under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def grouped(problems: list[tuple[str, str]]) -> list[str]:
    """One line per problem, with the places it occurs (a setting of ``x-airflow-common`` is
    found again in every service that merges it)."""
    places: dict[str, list[str]] = {}
    for where, what in problems:
        places.setdefault(what, []).append(where)
    return [f"{where[0]}: {what}" + (f" (and {len(where) - 1} more places)" if len(where) > 1
                                     else "") for what, where in places.items()]


def secret_problems(compose: dict) -> list[str]:
    """What lets a deployment run on a secret known to others: a secret variable with a default
    or none required (every ``${NAME...}`` whose NAME contains PASSWORD, SECRET or KEY must be
    ``${NAME:?...}``), a secret setting (PASSWORD, SECRET, KEY in its name) whose value is not
    such a variable, and a URL with a password that is not a required secret variable (a literal
    one, as ``airflow:airflow@``, or an empty one)."""
    problems = []
    for where, text in strings(compose):
        for i in interpolations(text):
            if any(word in i.name for word in SECRET_WORDS) and i.op != ":?":
                problems.append((where, f"{i.text} is a secret with "
                                 + (f"a default or an optional form ({i.op!r})" if i.op
                                    else "no ':?' (compose would run with it empty)")))
    for name, svc in compose["services"].items():
        for key, value in environment(svc).items():
            if any(word in key for word in SECRET_WORDS):
                found = interpolations(value)
                if not (len(found) == 1 and found[0].text == value and found[0].op == ":?"):
                    problems.append((f"services.{name}.environment.{key}",
                                     f"{value!r} is not a required variable (${{NAME:?...}})"))
    # Each variable stands for itself: a URL's password must be exactly one of them.
    marked = interpolated(compose, {i.name: f"<<{i.name}>>" for _, text in strings(compose)
                                    for i in interpolations(text)})
    for where, text in strings(marked):
        for url in re.finditer(r"[A-Za-z][A-Za-z0-9+.-]*://(?P<userinfo>[^/?#@\s]*)@", text):
            user, colon, password = url["userinfo"].partition(":")
            if not colon:
                continue  # a user name alone
            shown = url[0]
            variable = re.fullmatch(r"<<([A-Za-z_][A-Za-z0-9_]*)>>", password)
            if not password:
                problems.append((where, f"empty password in URL {shown!r}"))
            elif not variable:
                problems.append((where, f"literal password in URL {shown!r}"))
            elif not any(word in variable[1] for word in SECRET_WORDS):
                problems.append((where, f"the password in URL {shown!r} comes from "
                                 f"{variable[1]}, not a secret (PASSWORD, SECRET, KEY) variable"))
    return grouped(problems)


def mount_problems(compose: dict) -> list[str]:
    """What lets the code change under the pipeline, or hands a container more than it needs:
    every Airflow service mounts each of CODE read-only at /opt/project/<name> and nothing of
    the checkout writable but DATA; no service mounts the whole checkout (.env holds every
    secret); every path the pipeline writes lies in a writable data mount."""
    problems = []
    for name, svc in compose["services"].items():
        found = mounts(svc)
        for target, (source, read_only) in found.items():
            if not is_bind(source):
                continue
            if source.rstrip("/") in (".", "./"):
                problems.append((name, f"mounts the whole checkout ({source}:{target}), .env "
                                       "and .git included"))
            elif not read_only and (not name.startswith("airflow-") or source not in
                                    {f"./{d}" for d in DATA}):
                problems.append((name, f"{source}:{target} is writable but is no data folder "
                                       f"({', '.join(DATA)})"))
        if not name.startswith("airflow-"):
            continue
        for code in CODE:
            target = f"{PROJECT_MOUNT}/{code}"
            if target not in found:
                problems.append((name, f"{code} is not mounted at {target}"))
            elif found[target] != (f"./{code}", True):
                source, read_only = found[target]
                problems.append((name, f"{target} is {source}" + ("" if read_only else
                                                                   ", writable (needs :ro)")))
        writable = [target for target, (source, read_only) in found.items()
                    if is_bind(source) and not read_only]
        env = environment(svc)
        written = {key: env.get(key, "") for key in ("WH_LANDING_DIR", "WH_RUNS_DIR",
                                                      "WH_REPORTS_DIR")}
        # The published file and the quality history beside it (pipeline.quality.store).
        written["WH_WAREHOUSE's folder"] = env.get("WH_WAREHOUSE", "").rpartition("/")[0]
        for key, path in written.items():
            if not any(under(path, target) for target in writable):
                problems.append((name, f"{key} ({path or 'unset'}) is not in a writable data "
                                       "mount: the pipeline writes there"))
    return grouped(problems)


def test_compose_file_is_valid_against_the_compose_spec(compose):
    validator = compose_validator()
    errors = sorted(validator.iter_errors(compose), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(
        f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors
    )


def test_validator_rejects_a_broken_compose_file(compose):
    validator = compose_validator()
    broken = copy.deepcopy(compose)
    broken["services"]["postgres"]["ports"] = {"5432": 5432}  # must be a list
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(broken)


def test_all_services_of_the_topology_exist(compose):
    missing = REQUIRED_SERVICES - set(compose["services"])
    assert not missing, f"services missing from docker-compose.yml: {sorted(missing)}"


def test_airflow_services_share_one_image_built_from_the_official_one(compose):
    images = {svc.get("image") for svc in airflow_services(compose).values()}
    assert images == {"migration-warehouse-airflow:latest"}
    assert all(svc.get("build") for svc in airflow_services(compose).values())
    from_lines = [
        line.split()[1]
        for line in DOCKERFILE.read_text(encoding="utf-8").splitlines()
        if line.strip().upper().startswith("FROM ")
    ]
    assert from_lines == [AIRFLOW_IMAGE]


def test_executor_is_celery_with_postgres_metadata_and_redis_broker(resolved):
    compose = resolved
    for name, svc in airflow_services(compose).items():
        env = environment(svc)
        assert env.get("AIRFLOW__CORE__EXECUTOR") == "CeleryExecutor", name

        metadata_db = urlsplit(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
        assert metadata_db.scheme.startswith("postgresql"), name
        assert metadata_db.hostname == "postgres", name

        result_backend = urlsplit(env["AIRFLOW__CELERY__RESULT_BACKEND"])
        assert result_backend.scheme.startswith("db+postgresql"), name
        assert result_backend.hostname == "postgres", name

        broker = urlsplit(env["AIRFLOW__CELERY__BROKER_URL"])
        assert broker.scheme == "redis", name
        assert broker.hostname == "redis", name
    assert compose["services"]["postgres"]["image"].startswith("postgres:")
    assert compose["services"]["redis"]["image"].startswith("redis:")


def test_components_share_the_secrets_that_sign_their_tokens(compose):
    for key in ("AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY"):
        values = {environment(svc).get(key) for svc in airflow_services(compose).values()}
        assert len(values) == 1 and None not in values, f"{key} differs between services: {values}"


def test_project_is_mounted_and_configured_in_every_airflow_service(compose):
    for name, svc in airflow_services(compose).items():
        missing = sorted({f"{PROJECT_MOUNT}/{d}" for d in (*CODE, *DATA)} - set(mounts(svc)))
        assert not missing, f"{name} does not mount {missing}"
        env = environment(svc)
        assert env["AIRFLOW__CORE__DAGS_FOLDER"] == f"{PROJECT_MOUNT}/dags", name
        assert env["PYTHONPATH"] == PROJECT_MOUNT, name
        for setting in ("WH_WAREHOUSE", "WH_LANDING_DIR", "WH_RUNS_DIR"):
            assert env[setting].startswith(f"{PROJECT_MOUNT}/"), f"{name}: {setting}"
        assert "WH_SNAPSHOT_DIR" in env and "WH_CURATED_DIR" in env, name


def test_airflow_services_wait_for_their_dependencies(compose):
    expected = {
        "postgres": "service_healthy",
        "redis": "service_healthy",
        "airflow-init": "service_completed_successfully",
    }
    for name, svc in airflow_services(compose).items():
        depends_on = svc.get("depends_on") or {}
        wanted = {k: v for k, v in expected.items() if k != name}
        got = {k: depends_on.get(k, {}).get("condition") for k in wanted}
        assert got == wanted, name


SECRETS = ("AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY",
           "AIRFLOW_ADMIN_USER", "AIRFLOW_ADMIN_PASSWORD")


def test_no_secret_and_no_account_has_a_default(compose):
    """Every secret and the admin account are required variables (``${NAME:?...}``): compose
    refuses to start without them, so no deployment runs on a known key or airflow/airflow."""
    seen = set()
    for name, svc in airflow_services(compose).items():
        env = environment(svc)
        for key in SECRETS:
            if key not in env:
                continue
            seen.add(key)
            value = env[key]
            assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]*docs/deploy\.md\}", value), (name, key, value)
    assert seen == set(SECRETS)
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    assert "change-me" not in text and ":-airflow}" not in text


def test_no_secret_has_a_default_and_no_url_a_literal_password(compose):
    """Every ${...} of the file read: a secret variable (PASSWORD, SECRET, KEY in its name) is
    required, every secret setting is one, and every password in a URL is one (the metadata DB,
    the result backend, the broker)."""
    problems = secret_problems(compose)
    assert not problems, "docker-compose.yml has secrets known to others:\n  " + "\n  ".join(
        problems)


def planted(key: str, value: str) -> dict:
    """The compose file with the first setting ``key:`` given ``value`` instead."""
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    line = re.compile(rf"^(\s*{re.escape(key)}:) .*$", re.M)
    assert line.search(text), f"docker-compose.yml has no {key}: to plant into"
    return yaml.safe_load(line.sub(lambda m: f"{m[1]} {value}", text, count=1))


@pytest.mark.parametrize("key, value, expected", [
    ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "postgresql+psycopg2://airflow:airflow@postgres/airflow",
     "literal password in URL 'postgresql+psycopg2://airflow:airflow@'"),
    ("AIRFLOW__CELERY__RESULT_BACKEND", "db+postgresql://airflow:airflow@postgres/airflow",
     "literal password in URL 'db+postgresql://airflow:airflow@'"),
    ("AIRFLOW__CELERY__BROKER_URL", "redis://:@redis:6379/0", "empty password in URL 'redis://:@'"),
    ("AIRFLOW__CELERY__BROKER_URL", "redis://:${AIRFLOW_UID:?x}@redis:6379/0",
     "comes from AIRFLOW_UID, not a secret"),
    ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
     "postgresql+psycopg2://airflow:${POSTGRES_PASSWORD:-airflow}@postgres/airflow",
     "${POSTGRES_PASSWORD:-airflow} is a secret with a default"),
    ("POSTGRES_PASSWORD", "airflow",
     "services.postgres.environment.POSTGRES_PASSWORD: 'airflow' is not a required variable"),
    ("AIRFLOW__CORE__FERNET_KEY", "${AIRFLOW_FERNET_KEY}",
     "${AIRFLOW_FERNET_KEY} is a secret with no ':?'"),
    ("REDISCLI_AUTH", "${REDIS_PASSWORD?unset only}", "${REDIS_PASSWORD?unset only} is a secret "
     "with a default or an optional form ('?')"),
], ids=["metadata-db-literal", "result-backend-literal", "broker-empty", "broker-not-secret",
        "postgres-default", "postgres-service-literal", "fernet-optional", "redis-cli-optional"])
def test_secret_check_catches_a_planted_default(key, value, expected):
    """The check above fails, saying what, on each of these (the literal and empty URL passwords
    and ``POSTGRES_PASSWORD: airflow`` are what the file had before passwords were required)."""
    problems = secret_problems(planted(key, value))
    assert any(expected in p for p in problems), (expected, problems)


def test_redis_requires_the_password_the_broker_url_carries(compose, resolved):
    """The broker refuses clients without REDIS_PASSWORD (``--requirepass`` from the required
    variable), its healthcheck authenticates, and the Airflow services' broker URL carries it."""
    redis = compose["services"]["redis"]
    command = redis.get("command")
    argv = command if isinstance(command, list) else str(command or "").split()
    assert "--requirepass" in argv, f"the redis service starts without --requirepass: {command!r}"
    password = argv[argv.index("--requirepass") + 1] if argv[-1] != "--requirepass" else ""
    found = interpolations(password)
    assert len(found) == 1 and found[0].text == password and found[0].name == "REDIS_PASSWORD" \
        and found[0].op == ":?", f"--requirepass is not the required REDIS_PASSWORD: {password!r}"
    # redis-cli exits 0 on NOAUTH: the healthcheck must authenticate and look for PONG.
    assert environment(redis).get("REDISCLI_AUTH") == password, (
        "the healthcheck's redis-cli has no password (REDISCLI_AUTH)")
    assert "PONG" in " ".join(redis["healthcheck"]["test"]), redis["healthcheck"]
    for name, svc in airflow_services(resolved).items():
        broker = urlsplit(environment(svc)["AIRFLOW__CELERY__BROKER_URL"])
        assert broker.password == SAMPLE_ENV["REDIS_PASSWORD"], (
            f"{name}: the broker URL does not carry REDIS_PASSWORD: {broker.geturl()}")
    for name in ("airflow-worker", "airflow-scheduler"):
        assert "redis" in compose["services"][name]["depends_on"], name


def test_postgres_password_is_required_and_in_both_urls(resolved):
    password = environment(resolved["services"]["postgres"]).get("POSTGRES_PASSWORD")
    assert password == SAMPLE_ENV["POSTGRES_PASSWORD"], (
        f"the postgres service's password is {password!r}, not the required POSTGRES_PASSWORD")
    for name, svc in airflow_services(resolved).items():
        env = environment(svc)
        for key in ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CELERY__RESULT_BACKEND"):
            url = urlsplit(env[key])
            assert (url.username, url.password) == ("airflow", SAMPLE_ENV["POSTGRES_PASSWORD"]), (
                f"{name}: {key} does not log in with POSTGRES_PASSWORD: {env[key]}")


def test_compose_refuses_to_start_without_each_secret(compose):
    """As ``docker compose config`` would: each required variable left out of .env stops it,
    naming the variable and where its recipe is."""
    started = []
    for name in SAMPLE_ENV:
        try:
            interpolated(compose, {k: v for k, v in SAMPLE_ENV.items() if k != name})
        except MissingVariable as err:
            assert f"required variable {name} is missing a value" in str(err), err
            assert "docs/deploy.md" in str(err), f"{err}: does not say where the recipe is"
        else:
            started.append(name)
    assert not started, f"compose would start without {started} in .env"
    required = {i.name for _, text in strings(compose) for i in interpolations(text)
                if i.required}
    assert required == set(SAMPLE_ENV), required ^ set(SAMPLE_ENV)


def test_code_is_mounted_read_only_and_only_data_is_writable(compose):
    problems = mount_problems(compose)
    assert not problems, ("docker-compose.yml mounts code writable or data read-only:\n  "
                          + "\n  ".join(problems))


@pytest.mark.parametrize("old, new, expected", [
    ("./pipeline:/opt/project/pipeline:ro", "./pipeline:/opt/project/pipeline",
     "/opt/project/pipeline is ./pipeline, writable (needs :ro)"),
    ("    - ./dags:/opt/project/dags:ro\n", "    - .:/opt/project\n",
     "mounts the whole checkout (.:/opt/project)"),
    ("    - ./reports:/opt/project/reports\n", "",
     "WH_REPORTS_DIR (/opt/project/reports/quality) is not in a writable data mount"),
    ("./landing:/opt/project/landing", "./landing:/opt/project/landing:ro",
     "WH_LANDING_DIR (/opt/project/landing) is not in a writable data mount"),
    ("    - ./landing:/opt/project/landing\n", "    - ./landing:/opt/project/landing\n"
     "    - ./deploy:/opt/project/deploy\n", "./deploy:/opt/project/deploy is writable but is no "
     "data folder"),
], ids=["pipeline-writable", "whole-checkout", "reports-missing", "landing-read-only",
        "deploy-writable"])
def test_mount_check_catches_a_planted_mount(old, new, expected):
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    assert old in text, f"the file no longer has {old!r} to plant into"
    problems = mount_problems(yaml.safe_load(text.replace(old, new, 1)))
    assert any(expected in p for p in problems), (expected, problems)


def test_published_ports_bind_to_this_host_by_default(compose):
    published = {name: svc.get("ports", []) for name, svc in compose["services"].items()}
    assert published["airflow-apiserver"], "the UI must be reachable from this host"
    for name, ports in published.items():
        for port in ports:
            host = re.match(r"^(\$\{AIRFLOW_API_BIND:-([0-9.]+)\}|[0-9.]+):\d+:\d+$", str(port))
            assert host, (name, port)
            assert (host.group(2) or host.group(1)) == "127.0.0.1", (name, port)
    assert not published.get("postgres") and not published.get("redis")


def test_the_documented_secret_recipe_makes_keys_airflow_accepts(tmp_path, compose):
    """The snippet of docs/deploy.md, run as written: a Fernet key Fernet accepts, 64-character
    signing secrets, URL-safe passwords that come out of the compose file's URLs unchanged, no
    two alike, every required variable set, and a .env only its owner reads."""
    from cryptography.fernet import Fernet

    doc = (REPO_ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    snippet = doc[doc.index("py() {"):doc.index("chmod 600 .env") + len("chmod 600 .env")]
    subprocess.run(["bash", "-c", snippet], cwd=tmp_path, check=True, timeout=60)
    env = dict(line.split("=", 1) for line in (tmp_path / ".env").read_text().splitlines())
    Fernet(env["AIRFLOW_FERNET_KEY"].encode())  # raises on a malformed key
    assert len(env["AIRFLOW_JWT_SECRET"]) == len(env["AIRFLOW_API_SECRET_KEY"]) == 64
    secrets = ("AIRFLOW_FERNET_KEY", "AIRFLOW_JWT_SECRET", "AIRFLOW_API_SECRET_KEY",
               "AIRFLOW_ADMIN_PASSWORD", "POSTGRES_PASSWORD", "REDIS_PASSWORD")
    missing = sorted(set(SAMPLE_ENV) - set(env))
    assert not missing, f"the recipe in docs/deploy.md does not set {missing} in .env"
    assert len({env[k] for k in secrets}) == len(secrets)
    assert env["AIRFLOW_ADMIN_USER"] != "airflow" and len(env["AIRFLOW_ADMIN_PASSWORD"]) >= 24
    for key in ("POSTGRES_PASSWORD", "REDIS_PASSWORD"):
        # Written into URLs unencoded: only characters a URL's userinfo takes as they are.
        assert re.fullmatch(r"[A-Za-z0-9_-]{40,}", env[key]), (key, env[key])
    # The compose file with this .env: every required variable set, and the passwords read back
    # from its URLs exactly as generated.
    resolved = interpolated(compose, env)
    common = environment(resolved["services"]["airflow-scheduler"])
    for key, password in (("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "POSTGRES_PASSWORD"),
                          ("AIRFLOW__CELERY__RESULT_BACKEND", "POSTGRES_PASSWORD"),
                          ("AIRFLOW__CELERY__BROKER_URL", "REDIS_PASSWORD")):
        assert urlsplit(common[key]).password == env[password], (
            f"{key} does not read back the recipe's {password} unchanged")
    assert (tmp_path / ".env").stat().st_mode & 0o077 == 0


def test_dags_are_unpaused_at_creation_in_every_airflow_service(compose):
    """A deployment runs on schedule without anyone unpausing seven DAGs (docs/deploy.md);
    tests/test_production_topology.py runs with this very value."""
    for name, svc in airflow_services(compose).items():
        value = environment(svc).get("AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION")
        assert str(value).lower() == "false", (name, value)
