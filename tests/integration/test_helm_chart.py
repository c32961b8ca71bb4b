"""charts/lakehouse against the real control plane: it lints, renders without secrets, installs, and its
RBAC is both enough (the operator and the API run under the chart's service accounts and take an upload
to Succeeded) and no more (what they must not do, they cannot)."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from kubernetes import client

from lakehouse.devtools.kube_schemas import write_schemas
from lakehouse.devtools.sample_data import orders
from lakehouse.topics import parse_specs
from tests.utils.api_process import running_api
from tests.utils.monitoring import DASHBOARDS, RULES_FILE
from tests.utils.operator_process import OperatorProcess
from tests.utils.peering import peers
from tests.utils.runs import create_run, get_run, run_body, upload, wait_for_phase
from tests.utils.stack import stack_env
from tests.utils.upload_bodies import form

pytestmark = pytest.mark.integration
REPO_ROOT = Path(__file__).resolve().parents[2]
CHART = REPO_ROOT / "charts" / "lakehouse"
SECRET_VARIABLES = {
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "DATABASE_URL",
    "ICEBERG_CATALOG_TOKEN",
    "LAKEHOUSE_API_KEYS_SHA256",
    "LAKEHOUSE_NIFI_USERNAME",
    "LAKEHOUSE_NIFI_PASSWORD",
    "LAKEHOUSE_NIFI_LISTEN_TOKEN",
    "KAFKA_SASL_PASSWORD",
}
KUBERNETES_VERSION = "1.35.4"
FOREIGN_GROUPS = {"monitoring.coreos.com", "kafka.strimzi.io"}  # CRDs the test cluster does not install
# A Dataset the chart installs from its values (the dry run below holds it to the Dataset CRD).
LINE_ITEMS = {
    "name": "line_items",
    "version": 1,
    "source_system": "shop",
    "columns": [{"name": "order_id", "type": "long", "required": True}, {"name": "sku", "type": "string"}],
    "bronze": {"namespace": "bronze", "table": "line_items", "sort_by": ["order_id"]},
}
EVERYTHING_ON = [
    "--set", "spark.enabled=true", "--set", "nifi.enabled=true", "--set", "nifi.credentialsSecret=nifi-login",
    "--set", "catalog.tokenSecret=catalog-token", "--set", "nifi.caConfigMap=nifi-ca",
    "--set-string", "contracts.orders\\.yaml=name: orders", "--set", "airflowAccess.enabled=true",
    "--set", "monitoring.serviceMonitors.enabled=true", "--set", "monitoring.prometheusRule.enabled=true",
    "--set", "monitoring.dashboards.enabled=true", "--set-json", f"datasets=[{json.dumps(LINE_ITEMS)}]",
]  # fmt: skip


def helm(*args: str) -> str:
    done = subprocess.run(
        [REPO_ROOT / "devstack" / "helm.sh", *args], check=False, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"helm {' '.join(args)}: {done.stderr}{done.stdout}"
    return done.stdout


def kubectl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [REPO_ROOT / "devstack" / "services" / "kubernetes.sh", "kubectl", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )


def refusal(value: str) -> str:
    """What `helm template` says when it refuses to render the chart with `--set value`."""
    done = subprocess.run(
        [
            REPO_ROOT / "devstack" / "helm.sh",
            "template",
            "rel",
            str(CHART),
            "--kube-version",
            KUBERNETES_VERSION,
            "--set",
            value,
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0, f"--set {value} rendered"
    return done.stderr


def rendered(*args: str, namespace: str = "lakehouse-system") -> list[dict[str, Any]]:
    text = helm("template", "rel", str(CHART), "--namespace", namespace, "--kube-version", KUBERNETES_VERSION, *args)
    return [doc for doc in yaml.safe_load_all(text) if doc]


def feature_sets() -> list[list[str]]:
    """The values the schema checks render the chart with: every optional feature off, on, and the rest."""
    return [
        [],
        [*EVERYTHING_ON, *ADOPTED_SECRETS, "--set", "api.ingress.enabled=true", "--set", "api.ingress.tlsSecret=tls"],
        ["--set", "kafka.topics.create=none", "--set", "migrations.enabled=false",
         "--set", "operator.finishedRunTTLSeconds=3600"],
    ]  # fmt: skip


def checkable(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The objects whose schemas this cluster serves (not the kinds of FOREIGN_GROUPS)."""
    return [doc for doc in docs if doc["apiVersion"].split("/")[0] not in FOREIGN_GROUPS]


# An argument that names a credential, or that Kubernetes would expand ($(VAR)) from a Secret's variable.
CREDENTIAL_WORD = re.compile(r"(?i)password|secret|token|api[-_]?key|credential")
VARIABLE_REFERENCE = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def argv_problems(container: dict[str, Any]) -> list[str]:
    """What in a container's command line (command and args, as the kubelet joins them) could carry a secret."""
    from_secrets = SECRET_VARIABLES | {
        v["name"] for v in container.get("env", []) if "secretKeyRef" in v.get("valueFrom", {})
    }
    problems = []
    for arg in [*container.get("command", []), *container.get("args", [])]:
        problems += [f"{arg!r} expands {name}" for name in VARIABLE_REFERENCE.findall(arg) if name in from_secrets]
        if CREDENTIAL_WORD.search(arg):
            problems.append(f"{arg!r} names a credential")
    return problems


def test_the_argv_check_reads_command_and_args() -> None:
    """The check above is no stronger than what it reads: a secret in args, not command, is found too."""
    container = {
        "command": ["python", "-m", "lakehouse_operator"],
        "args": ["--db", "$(DATABASE_URL)", "--s3-secret=x"],
        "env": [{"name": "DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": "db", "key": "DATABASE_URL"}}}],
    }
    assert argv_problems(container) == ["'$(DATABASE_URL)' expands DATABASE_URL", "'--s3-secret=x' names a credential"]
    assert argv_problems({"command": ["python", "-m", "lakehouse_operator"], "args": ["--port", "8000"]}) == []


def test_chart_lints_strictly() -> None:
    helm("lint", "--strict", str(CHART))
    helm("lint", "--strict", str(CHART), *EVERYTHING_ON)


def test_credentials_are_only_secret_references() -> None:
    for values in ([], EVERYTHING_ON):
        containers = [
            container
            for doc in rendered(*values)
            if doc["kind"] == "Deployment"
            for container in doc["spec"]["template"]["spec"]["containers"]
        ]
        assert {c["name"] for c in containers} == {"operator", "api"}
        for container in containers:
            for variable in container["env"]:
                if variable["name"] in SECRET_VARIABLES:
                    assert set(variable) == {"name", "valueFrom"}, variable
                    assert "secretKeyRef" in variable["valueFrom"]
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
            assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
            assert argv_problems(container) == []
        pods = [doc["spec"]["template"]["spec"] for doc in rendered(*values) if doc["kind"] == "Deployment"]
        assert [problem for pod in pods for c in pod.get("initContainers", []) for problem in argv_problems(c)] == []


@pytest.mark.parametrize(
    ("value", "complaint"),
    [
        ("operator.ingestEngine=foo", "/operator/ingestEngine"),
        ("spark.executorMemory=lots", "/spark/executorMemory"),
        ("api.port=0", "/api/port"),
        ("api.rateLimit.burst=0", "/api/rateLimit/burst"),
        ("operator.ingestEngines=nifi", "ingestEngines"),  # a typo is refused, not ignored
        ("monitoring.serviceMonitors.interval=soon", "/monitoring/serviceMonitors/interval"),
    ],
)
def test_values_are_checked_before_anything_renders(value: str, complaint: str) -> None:
    """values.schema.json: a wrong value fails `helm install` with its path, instead of a crash-looping pod."""
    assert complaint in refusal(value)


def test_large_numbers_render_as_integers() -> None:
    """Helm holds numbers as floats: 268435456 would render as 2.68435456e+08 and crash the operator."""
    env = {
        variable["name"]: variable.get("value")
        for doc in rendered()
        if doc["kind"] == "Deployment"
        for container in doc["spec"]["template"]["spec"]["containers"]
        for variable in container["env"]
    }
    assert env["LAKEHOUSE_SPARK_THRESHOLD_BYTES"] == "268435456"
    assert env["LAKEHOUSE_MAX_UPLOAD_BYTES"] == "5368709120"
    assert (env["LAKEHOUSE_API_RATE_LIMIT_PER_MINUTE"], env["LAKEHOUSE_API_RATE_LIMIT_BURST"]) == ("600", "60")


def test_spark_rights_only_when_spark_is_enabled() -> None:
    def operator_rules(values: list[str]) -> list[dict[str, Any]]:
        (role,) = [d for d in rendered(*values) if d["kind"] == "Role" and d["metadata"]["name"].endswith("-operator")]
        return role["rules"]

    assert not any("sparkoperator.k8s.io" in r["apiGroups"] for r in operator_rules([]))
    assert any("sparkoperator.k8s.io" in r["apiGroups"] for r in operator_rules(EVERYTHING_ON))
    everything = rendered(*EVERYTHING_ON)
    assert all(d["kind"] not in ("ClusterRole", "ClusterRoleBinding") for d in everything)
    (airflow,) = [d for d in everything if d["kind"] == "RoleBinding" and d["metadata"]["name"].endswith("-airflow")]
    assert airflow["subjects"] == [{"kind": "ServiceAccount", "name": "airflow-worker", "namespace": "airflow"}]


# The Secrets of CloudNativePG (<cluster>-app, key uri) and Strimzi (a KafkaUser's Secret, the cluster CA's),
# and IRSA instead of S3 keys.
ADOPTED_SECRETS = [
    "--set", "database.urlSecret=pg-app", "--set", "database.urlKey=uri",
    "--set", "kafka.securityProtocol=SASL_SSL", "--set", "kafka.sasl.username=lakehouse",
    "--set", "kafka.sasl.passwordSecret=lakehouse-user", "--set", "kafka.tls.caSecret=kafka-cluster-ca-cert",
    "--set", "catalog.tokenSecret=catalog", "--set", "catalog.tokenKey=token", "--set", "s3.credentialsSecret=",
    "--set", "serviceAccounts.operator.annotations.eks\\.amazonaws\\.com/role-arn=arn:aws:iam::1:role/lakehouse",
]  # fmt: skip


def test_secret_names_and_keys_are_the_ones_other_charts_make() -> None:
    docs = rendered(*ADOPTED_SECRETS)
    pods = {d["metadata"]["name"]: d["spec"]["template"]["spec"] for d in docs if d["kind"] in ("Deployment", "Job")}
    assert set(pods) == {"rel-lakehouse-operator", "rel-lakehouse-api", "rel-lakehouse-migrate", "rel-lakehouse-topics"}
    for name, pod in pods.items():
        (container,) = pod["containers"]
        env = {e["name"]: e for e in container["env"]}
        if not name.endswith("-topics"):  # the topics Job needs only Kafka
            assert env["DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {"name": "pg-app", "key": "uri"}
        assert not {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} & set(env), name  # IRSA: no keys at all
        if name.endswith("-migrate"):
            continue
        assert env["KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "lakehouse-user", "key": "password"}
        ca_file = Path(env["KAFKA_SSL_CA_LOCATION"]["value"])
        (mount,) = [m for m in container["volumeMounts"] if m["name"] == "kafka-ca"]
        assert ca_file.parent == Path(mount["mountPath"])
        (volume,) = [v for v in pod["volumes"] if v["name"] == "kafka-ca"]
        assert volume["secret"] == {
            "secretName": "kafka-cluster-ca-cert",
            "items": [{"key": "ca.crt", "path": "ca.crt"}],
        }
        if name.endswith("-api"):  # keys as a file the API re-reads, never a variable
            assert "LAKEHOUSE_API_KEYS_SHA256" not in env
            keys_file = Path(env["LAKEHOUSE_API_KEYS_FILE"]["value"])
            (keys_mount,) = [m for m in container["volumeMounts"] if m["name"] == "api-keys"]
            assert keys_file.parent == Path(keys_mount["mountPath"])
    (operator_account,) = [
        d for d in docs if d["kind"] == "ServiceAccount" and d["metadata"]["name"].endswith("-operator")
    ]
    assert operator_account["metadata"]["annotations"] == {
        "eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/lakehouse"
    }

    assert "kafka.sasl.username is required" in refusal("kafka.securityProtocol=SASL_SSL")


def test_every_rendered_object_is_valid_for_the_api_server(kube_api: client.ApiClient) -> None:
    """Each object the chart renders, with every optional feature off and on, passes the real API server's
    schema validation (a server-side dry run, strict: an unknown field is an error). Kinds whose CRDs this
    cluster lacks (Prometheus Operator, Strimzi) are checked by the rendering tests above."""
    core = client.CoreV1Api(kube_api)
    namespace = f"it-helm-dry-{uuid.uuid4().hex[:8]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    try:
        for values in feature_sets():
            docs = checkable(rendered(*values, namespace=namespace))
            done = subprocess.run(
                [REPO_ROOT / "devstack" / "services" / "kubernetes.sh", "kubectl", "apply", "--dry-run=server",
                 "--validate=strict", "-n", namespace, "-f", "-"],
                input=yaml.safe_dump_all(docs), check=False, capture_output=True, text=True, timeout=120,
            )  # fmt: skip
            assert done.returncode == 0, f"{values}: {done.stderr}"
            assert done.stdout.count("(server dry run)") == len(docs), done.stdout
    finally:
        core.delete_namespace(namespace)


def kubeconform(schemas: Path, docs: list[dict[str, Any]]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [REPO_ROOT / "devstack" / "kubeconform.sh", "-strict", "-summary", "-kubernetes-version", KUBERNETES_VERSION,
         "-schema-location", str(schemas), "-"],
        input=yaml.safe_dump_all(docs), check=False, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_every_rendered_object_passes_kubeconform_offline(tmp_path: Path) -> None:
    """The same renders pass kubeconform -strict, as a user's CI would run it without a cluster, against
    schemas made from this API server (lakehouse/devtools/kube_schemas.py). A field no schema lists is
    refused, which the deliberately misspelt field shows."""
    openapi = kubectl("get", "--raw", "/openapi/v2")
    assert openapi.returncode == 0, openapi.stderr
    schemas = tmp_path / "schemas"
    write_schemas(json.loads(openapi.stdout), schemas, KUBERNETES_VERSION)
    for values in feature_sets():
        docs = checkable(rendered(*values))
        done = kubeconform(schemas, docs)
        assert done.returncode == 0, f"{values}: {done.stdout}{done.stderr}"
        assert f"Valid: {len(docs)}, Invalid: 0, Errors: 0, Skipped: 0" in done.stdout, done.stdout

    misspelt = checkable(rendered())
    operator = next(d for d in misspelt if d["kind"] == "Deployment" and d["metadata"]["name"].endswith("-operator"))
    operator["spec"]["template"]["spec"]["containers"][0]["imagePullPolcy"] = "Always"
    done = kubeconform(schemas, misspelt)
    assert done.returncode == 1 and "'imagePullPolcy' not allowed" in done.stdout, done.stdout


def test_api_pods_finish_their_work_when_they_stop() -> None:
    (api,) = [d for d in rendered() if d["kind"] == "Deployment" and d["metadata"]["name"].endswith("-api")]
    pod = api["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] == 300  # a streaming upload finishes
    assert pod["containers"][0]["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", "5"]  # no refused request


def test_deleting_runs_only_when_finished_runs_expire() -> None:
    def run_verbs(values: list[str]) -> set[str]:
        (role,) = [d for d in rendered(*values) if d["kind"] == "Role" and d["metadata"]["name"].endswith("-operator")]
        (runs,) = [r for r in role["rules"] if r["resources"] == ["ingestionruns"]]
        return set(runs["verbs"])

    assert "delete" not in run_verbs([])  # finished runs are kept by default
    assert "delete" in run_verbs(["--set", "operator.finishedRunTTLSeconds=604800"])


def test_hook_jobs_migrate_and_make_topics_from_the_values() -> None:
    """Before each install and upgrade: the migrations, then the topics (a Job, or Strimzi KafkaTopics)."""

    def of_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
        return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}

    values = yaml.safe_load((CHART / "values.yaml").read_text())["kafka"]["topics"]["items"]
    jobs = of_kind(rendered(), "Job")
    assert set(jobs) == {"rel-lakehouse-migrate", "rel-lakehouse-topics"}
    weights = {name: int(job["metadata"]["annotations"]["helm.sh/hook-weight"]) for name, job in jobs.items()}
    assert weights["rel-lakehouse-migrate"] < weights["rel-lakehouse-topics"]
    for job in jobs.values():
        assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
        (container,) = job["spec"]["template"]["spec"]["containers"]
        assert container["command"][:2] == ["python", "-m"]
        assert job["spec"]["template"]["spec"]["automountServiceAccountToken"] is False
    (topics_container,) = jobs["rel-lakehouse-topics"]["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in topics_container["env"]}
    assert [s.name for s in parse_specs(env["LAKEHOUSE_TOPICS"])] == sorted(values)  # what the Job will read

    strimzi = rendered(
        "--set", "kafka.topics.create=strimzi", "--set", "migrations.enabled=false",
        "--set", "kafka.topics.strimziNamespace=kafka",
    )  # fmt: skip
    assert not of_kind(strimzi, "Job")
    kafka_topics = of_kind(strimzi, "KafkaTopic")
    assert set(kafka_topics) == set(values)
    for name, topic in kafka_topics.items():
        assert topic["metadata"]["labels"]["strimzi.io/cluster"] == "kafka"
        assert topic["metadata"]["namespace"] == "kafka"  # where Strimzi's Topic Operator watches
        assert {k: topic["spec"][k] for k in ("partitions", "replicas", "config")} == values[name]
    assert not of_kind(rendered("--set", "kafka.topics.create=none"), "KafkaTopic")


def test_dashboards_configmap_holds_the_dashboard_files() -> None:
    assert not [d for d in rendered() if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-dashboards")]
    (config_map,) = [
        d
        for d in rendered("--set", "monitoring.dashboards.enabled=true")
        if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-dashboards")
    ]
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config_map["data"] == {path.name: path.read_text() for path in DASHBOARDS}


def test_monitoring_is_off_by_default_and_its_rules_are_the_rules_file() -> None:
    """The PrometheusRule is files/prometheus-rules.yaml itself, and the ServiceMonitors scrape the two Services
    under the job names those rules (and the dashboards) select."""
    assert not [doc for doc in rendered() if doc["apiVersion"].startswith("monitoring.coreos.com/")]
    docs = rendered(*EVERYTHING_ON, "--set", "monitoring.prometheusRule.labels.release=kps")

    (rule,) = [doc for doc in docs if doc["kind"] == "PrometheusRule"]
    assert rule["spec"]["groups"] == yaml.safe_load(RULES_FILE.read_text())["groups"]
    assert rule["metadata"]["labels"]["release"] == "kps"
    services = [doc for doc in docs if doc["kind"] == "Service"]
    jobs = set()
    for monitor in (doc for doc in docs if doc["kind"] == "ServiceMonitor"):
        selector = monitor["spec"]["selector"]["matchLabels"].items()
        (service,) = [s for s in services if selector <= s["metadata"]["labels"].items()]
        (endpoint,) = monitor["spec"]["endpoints"]
        assert endpoint["port"] in {port["name"] for port in service["spec"]["ports"]}
        jobs |= {r["replacement"] for r in endpoint["relabelings"] if r["targetLabel"] == "job"}
    assert jobs == {"lakehouse-operator", "lakehouse-api"}


@pytest.fixture
def release(request: pytest.FixtureRequest, kube_api: client.ApiClient) -> Iterator[tuple[str, str]]:
    """The chart installed with Helm into a fresh namespace (release `rel`); uninstalled afterwards.
    Indirect parameters are extra `helm install` arguments."""
    core = client.CoreV1Api(kube_api)
    namespace = f"it-helm-{uuid.uuid4().hex[:8]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    kubeconfig = stack_env("KUBECONFIG")["KUBECONFIG"]
    values = getattr(request, "param", [])
    # --no-hooks: the migrations and topics Jobs need the Secrets and images of a real install (the cluster
    # tests run them); this release is for RBAC, with the operator and the API as host processes.
    helm("install", "rel", str(CHART), "--namespace", namespace, "--kubeconfig", kubeconfig, "--wait=false",
         "--no-hooks", *values)  # fmt: skip
    try:
        yield namespace, kubeconfig
    finally:
        helm("uninstall", "rel", "--namespace", namespace, "--kubeconfig", kubeconfig)
        core.delete_namespace(namespace)


def service_account_kubeconfig(namespace: str, account: str, admin_kubeconfig: str, path: Path) -> Path:
    """A kubeconfig that authenticates as the service account, with a token the API server issued."""
    token = kubectl("create", "token", account, "--namespace", namespace, "--duration", "1h")
    assert token.returncode == 0, token.stderr
    admin = yaml.safe_load(Path(admin_kubeconfig).read_text())
    cluster = admin["clusters"][0]["cluster"]
    if "certificate-authority" in cluster:
        ca = Path(cluster.pop("certificate-authority")).read_bytes()
        cluster["certificate-authority-data"] = base64.b64encode(ca).decode()
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "local", "cluster": cluster}],
        "users": [{"name": account, "user": {"token": token.stdout.strip()}}],
        "contexts": [{"name": account, "context": {"cluster": "local", "user": account, "namespace": namespace}}],
        "current-context": account,
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


def can_i(
    namespace: str, account: str, verb: str, resource: str, in_namespace: str | None = None, subresource: str = ""
) -> bool:
    done = kubectl(
        "auth", "can-i", verb, resource,
        "--namespace", in_namespace or namespace,
        f"--as=system:serviceaccount:{namespace}:{account}",
        *([f"--subresource={subresource}"] if subresource else []),
    )  # fmt: skip
    answer = done.stdout.strip()
    assert answer in ("yes", "no"), f"kubectl auth can-i failed: {done.stderr}"  # an error is not a "no"
    return answer == "yes"


def test_installed_chart_grants_enough_and_no_more(
    release: tuple[str, str],
    custom_objects: client.CustomObjectsApi,
    tmp_path: Path,
) -> None:
    namespace, kubeconfig = release
    operator_sa, api_sa = "rel-lakehouse-operator", "rel-lakehouse-api"

    # Enough: the API (as its service account) takes an upload, the operator (as its own) runs it.
    operator_env = {"KUBECONFIG": str(service_account_kubeconfig(namespace, operator_sa, kubeconfig, tmp_path / "op"))}
    api_env = {"KUBECONFIG": str(service_account_kubeconfig(namespace, api_sa, kubeconfig, tmp_path / "api"))}
    operator = OperatorProcess(namespace, tmp_path / "operator.log", operator_env).start()
    try:
        with running_api(namespace, tmp_path / "api.log", api_env) as api:
            sample = orders(60, invalid_every=6)
            headers, body = form(sample.csv_bytes())
            response = requests.post(f"{api.url}/api/v1/uploads", headers=api.headers | headers, data=body, timeout=60)
            assert response.status_code == 202, response.text
            accepted = response.json()
            run_name = accepted["runName"]
            run = wait_for_phase(custom_objects, namespace, run_name, {"Succeeded", "Failed"}, timeout=120)
            assert run["status"]["phase"] == "Succeeded", run["status"]
            assert run["status"]["counts"]["rejected"] == 10
            status = requests.get(accepted["statusUrl"], headers=api.headers, timeout=30)
            assert status.status_code == 200 and status.json()["phase"] == "Succeeded", status.text
    finally:
        operator.stop()
    log = (tmp_path / "operator.log").read_text()
    assert "Forbidden" not in log and " 403" not in log, log[-3000:]
    assert get_run(custom_objects, namespace, run_name)["metadata"]["annotations"]  # Kopf's progress was patchable

    # No more: no Secrets, no other namespace, nothing cluster-wide, no deleting runs (the operator may delete
    # finished ones only when operator.finishedRunTTLSeconds is set; test_deleting_runs_only_when_...).
    for account in (operator_sa, api_sa):
        assert not can_i(namespace, account, "get", "secrets")
        assert not can_i(namespace, account, "list", "ingestionruns.lakehouse.dev", in_namespace="default")
        assert not can_i(namespace, account, "list", "namespaces")
        assert not can_i(namespace, account, "create", "pods")
    assert not can_i(namespace, operator_sa, "delete", "ingestionruns.lakehouse.dev")
    assert not can_i(namespace, api_sa, "delete", "ingestionruns.lakehouse.dev")
    assert can_i(namespace, operator_sa, "patch", "ingestionruns.lakehouse.dev", subresource="status")
    assert not can_i(namespace, api_sa, "patch", "ingestionruns.lakehouse.dev", subresource="status")
    assert not can_i(namespace, operator_sa, "update", "ingestionruns.lakehouse.dev")
    assert not can_i(namespace, operator_sa, "create", "ingestionruns.lakehouse.dev")
    assert not can_i(namespace, operator_sa, "create", "sparkapplications.sparkoperator.k8s.io")
    # Datasets: the operator reads and watches them and writes their status; the API only reads them.
    for verb in ("get", "list", "watch"):
        assert can_i(namespace, operator_sa, verb, "datasets.lakehouse.dev")
    assert can_i(namespace, operator_sa, "patch", "datasets.lakehouse.dev", subresource="status")
    assert can_i(namespace, api_sa, "list", "datasets.lakehouse.dev")
    for account in (operator_sa, api_sa):
        assert not can_i(namespace, account, "patch", "datasets.lakehouse.dev")
        assert not can_i(namespace, account, "create", "datasets.lakehouse.dev")
    assert not can_i(namespace, api_sa, "patch", "datasets.lakehouse.dev", subresource="status")


def test_operator_replicas_share_the_charts_peering_object_and_may_touch_no_other() -> None:
    def operator_objects(values: list[str]) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
        docs = rendered(*values)
        (deployment,) = [d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"].endswith("-operator")]
        (role,) = [d for d in docs if d["kind"] == "Role" and d["metadata"]["name"].endswith("-operator")]
        return deployment, role["rules"], [d for d in docs if d["kind"] == "KopfPeering"]

    deployment, rules, peerings = operator_objects([])
    assert deployment["spec"]["replicas"] == 1 and not peerings  # one replica runs standalone
    assert not any("kopf.dev" in r["apiGroups"] for r in rules)

    deployment, rules, peerings = operator_objects(["--set", "operator.replicas=2"])
    assert deployment["spec"]["replicas"] == 2
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env = {v["name"]: v.get("value") for v in container["env"]}
    ((peering,),) = [peerings]
    assert env["LAKEHOUSE_PEERING_NAME"] == peering["metadata"]["name"] == "rel-lakehouse-operator"
    assert peering["metadata"]["namespace"] == "lakehouse-system"
    kopf_rules = [r for r in rules if "kopf.dev" in r["apiGroups"]]
    assert {tuple(r["verbs"]): r.get("resourceNames") for r in kopf_rules} == {
        ("list", "watch"): None,
        ("get", "patch"): ["rel-lakehouse-operator"],
    }


@pytest.mark.parametrize("release", [["--set", "operator.replicas=2"]], indirect=True)
def test_two_replicas_under_the_charts_rights_run_a_run(
    release: tuple[str, str], custom_objects: client.CustomObjectsApi, s3: Any, tmp_path: Path
) -> None:
    """Both replicas join the chart's KopfPeering object as the operator's service account; one runs the run."""
    namespace, kubeconfig = release
    operator_sa, peering = "rel-lakehouse-operator", "rel-lakehouse-operator"
    sa_kubeconfig = str(service_account_kubeconfig(namespace, operator_sa, kubeconfig, tmp_path / "op"))
    replicas = [
        OperatorProcess(
            namespace,
            tmp_path / f"{name}.log",
            {"KUBECONFIG": sa_kubeconfig, "LAKEHOUSE_PEERING_NAME": peering, "POD_ID": name},
        ).start()
        for name in ("replica-a", "replica-b")
    ]
    try:
        up = upload(s3, orders(30).csv_bytes(), "orders", "csv")
        create_run(custom_objects, namespace, run_body(up, "orders"))
        run = wait_for_phase(custom_objects, namespace, up.upload_id, {"Succeeded", "Failed"}, timeout=120)
        assert run["status"]["phase"] == "Succeeded", run["status"]
        assert peers(custom_objects, namespace, peering).keys() == {"replica-a", "replica-b"}
    finally:
        for replica in replicas:
            replica.stop()
    logs = [(tmp_path / f"{name}.log").read_text() for name in ("replica-a", "replica-b")]
    assert all("Forbidden" not in log and " 403" not in log for log in logs), logs
    assert [up.upload_id in log for log in logs] == [True, False]  # the older replica ran it, alone
    assert not peers(custom_objects, namespace, peering)  # each removed itself when it stopped
    assert not can_i(namespace, operator_sa, "create", "kopfpeerings.kopf.dev")
    assert not can_i(namespace, operator_sa, "patch", "kopfpeerings.kopf.dev/someone-else")
    assert can_i(namespace, operator_sa, "patch", f"kopfpeerings.kopf.dev/{peering}")
