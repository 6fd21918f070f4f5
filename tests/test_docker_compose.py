"""docker-compose.yml is valid Compose and is the production topology docs/deploy.md describes.

No Docker engine runs where these tests run, so the file is checked against the Compose
Specification's JSON schema kept in the shared directory (``../shared/schemas/compose-spec.json``,
or ``$WH_SHARED_DIR/schemas/compose-spec.json``). A missing schema is a failure, not a skip:
a skipped check would look like a passing one.
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


def bind_mounts(service: dict) -> dict[str, str]:
    """Container target -> host source of a service's volumes, short or long syntax."""
    mounts = {}
    for volume in service.get("volumes") or []:
        if isinstance(volume, str):
            source, _, rest = volume.partition(":")
            mounts[rest.split(":")[0]] = source
        else:
            mounts[volume["target"]] = volume.get("source", "")
    return mounts


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


def test_executor_is_celery_with_postgres_metadata_and_redis_broker(compose):
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
        assert bind_mounts(svc).get(PROJECT_MOUNT) == ".", f"{name} does not mount the project"
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


def test_published_ports_bind_to_this_host_by_default(compose):
    published = {name: svc.get("ports", []) for name, svc in compose["services"].items()}
    assert published["airflow-apiserver"], "the UI must be reachable from this host"
    for name, ports in published.items():
        for port in ports:
            host = re.match(r"^(\$\{AIRFLOW_API_BIND:-([0-9.]+)\}|[0-9.]+):\d+:\d+$", str(port))
            assert host, (name, port)
            assert (host.group(2) or host.group(1)) == "127.0.0.1", (name, port)
    assert not published.get("postgres") and not published.get("redis")


def test_the_documented_secret_recipe_makes_keys_airflow_accepts(tmp_path):
    """The snippet of docs/deploy.md, run as written: a Fernet key Fernet accepts, 64-character
    signing secrets, no two alike, and a .env only its owner reads."""
    from cryptography.fernet import Fernet

    doc = (REPO_ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    snippet = doc[doc.index("py() {"):doc.index("chmod 600 .env") + len("chmod 600 .env")]
    subprocess.run(["bash", "-c", snippet], cwd=tmp_path, check=True, timeout=60)
    env = dict(line.split("=", 1) for line in (tmp_path / ".env").read_text().splitlines())
    Fernet(env["AIRFLOW_FERNET_KEY"].encode())  # raises on a malformed key
    assert len(env["AIRFLOW_JWT_SECRET"]) == len(env["AIRFLOW_API_SECRET_KEY"]) == 64
    assert len({env[k] for k in ("AIRFLOW_FERNET_KEY", "AIRFLOW_JWT_SECRET",
                                 "AIRFLOW_API_SECRET_KEY", "AIRFLOW_ADMIN_PASSWORD")}) == 4
    assert env["AIRFLOW_ADMIN_USER"] != "airflow" and len(env["AIRFLOW_ADMIN_PASSWORD"]) >= 24
    assert (tmp_path / ".env").stat().st_mode & 0o077 == 0


def test_dags_are_unpaused_at_creation_in_every_airflow_service(compose):
    """A deployment runs on schedule without anyone unpausing seven DAGs (docs/deploy.md);
    tests/test_production_topology.py runs with this very value."""
    for name, svc in airflow_services(compose).items():
        value = environment(svc).get("AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION")
        assert str(value).lower() == "false", (name, value)
