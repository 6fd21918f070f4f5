"""The in-process execution API of ``make run`` is built for the task SDK's one API version
(pipeline.airflow_setup.serve_one_api_version, docs/decisions.md 90): it must serve that version
exactly as Airflow's full app does, answer the SDK's requests, and leave Airflow alone when the
versions do not match. Each check runs in a fresh interpreter: the function changes Airflow's
module state for the rest of the process, as it does in ``make run``."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from tests.conftest import REPO_ROOT

ROUTES = """
def routes(app, version):
    app._cadwyn_initialize()
    out = {}
    for r in app.router.versioned_routers[version].routes:
        model = getattr(r, "response_model", None)
        schema = model.model_json_schema() if hasattr(model, "model_json_schema") else None
        body = getattr(getattr(r, "body_field", None), "type_", None)
        out[f"{sorted(getattr(r, 'methods', []) or [])} {r.path}"] = {
            "response": schema,
            "body": body.model_json_schema() if hasattr(body, "model_json_schema") else None}
    return out, sorted(app.router.versioned_routers)
"""


def run_python(code: str, tmp_path) -> dict:
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path / "airflow"),
           "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"the check's interpreter failed:\n{done.stderr[-3000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_one_version_serves_what_the_full_app_serves_for_it(tmp_path):
    got = run_python(ROUTES + """
import json
from airflow.api_fastapi.execution_api.app import create_task_execution_api_app
from airflow.sdk.api.datamodels._generated import API_VERSION
full, full_versions = routes(create_task_execution_api_app(), API_VERSION)
from pipeline.airflow_setup import serve_one_api_version
said = serve_one_api_version()
one, one_versions = routes(create_task_execution_api_app(), API_VERSION)
print(json.dumps({"said": said, "version": API_VERSION, "full": full, "one": one,
                  "full_versions": full_versions, "one_versions": one_versions}))
""", tmp_path)
    assert got["said"] == f"execution API built for API version {got['version']} only"
    assert got["one_versions"] == [got["version"]], got["one_versions"]
    assert len(got["full_versions"]) > 1, "Airflow's full app keeps older versions"
    missing = sorted(set(got["full"]) - set(got["one"]))
    extra = sorted(set(got["one"]) - set(got["full"]))
    assert not missing and not extra, f"routes missing {missing}, routes added {extra}"
    differ = sorted(k for k in got["full"] if got["full"][k] != got["one"][k])
    assert not differ, f"request or response schemas differ from the full app's: {differ}"
    assert len(got["one"]) > 20, "the version's routes were compared"


def test_the_trimmed_app_answers_the_task_sdk(tmp_path):
    """Real requests through the transport dag.test() uses, with the header the SDK's client
    sends: a health check answers, and a heartbeat with no body is refused by the version's
    request schema (422 naming the missing fields), before any database is needed."""
    got = run_python("""
import json
from pipeline.airflow_setup import serve_one_api_version
serve_one_api_version()
from airflow.api_fastapi.execution_api.app import InProcessExecutionAPI
from airflow.sdk.api.datamodels._generated import API_VERSION
import httpx
api = InProcessExecutionAPI()
client = httpx.Client(transport=api.transport, base_url="http://in-process.invalid")
headers = {"airflow-api-version": API_VERSION}
health = client.get("/health/ping", headers=headers)
ti = client.put("/task-instances/00000000-0000-0000-0000-000000000001/heartbeat",
               headers=headers, json={})
print(json.dumps({"health": health.status_code, "ti": ti.status_code, "ti_body": ti.text[:300],
                  "versions": sorted(api.app.router.versioned_routers)}))
""", tmp_path)
    assert got["health"] == 200, got
    assert got["versions"] and len(got["versions"]) == 1, got["versions"]
    assert got["ti"] == 422 and "hostname" in got["ti_body"], (
        f"the heartbeat route did not check its body against the version's schema: {got}")


def test_another_sdk_version_leaves_airflow_as_it_is(tmp_path):
    got = run_python("""
import json
import airflow.sdk.api.datamodels._generated as generated
generated.API_VERSION = "2025-04-28"
from pipeline.airflow_setup import serve_one_api_version
said = serve_one_api_version()
from airflow.api_fastapi.execution_api import versions
print(json.dumps({"said": said, "versions": [v.value for v in versions.bundle.versions]}))
""", tmp_path)
    assert got["said"].startswith("execution API left as it is: the task SDK speaks 2025-04-28"), got
    assert len(got["versions"]) > 1, f"the bundle was cut although the versions differ: {got}"
