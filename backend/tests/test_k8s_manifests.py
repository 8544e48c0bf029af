"""deploy/k8s/: validated offline against the pinned Kubernetes version's schemas
(kubernetes-validate, strict: an unknown or misspelt field fails), then what the schemas cannot
say: the pieces refer to each other correctly, every pod runs non-root on a read-only root
filesystem, the probes reach /api/health/ under an allowed host, the Secret holds placeholders
only, and the ConfigMap plus a filled-in Secret is a configuration the settings accept."""

import secrets
from pathlib import Path

import pytest
import yaml

from backend.tests.test_deploy import manage

kubernetes_validate = pytest.importorskip(
    "kubernetes_validate", reason="kubernetes-validate not installed (requirements-dev.txt)"
)

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
# The oldest minor version still supported by the big managed offerings when this was written;
# the manifests use only APIs that are GA there (apps/v1, batch/v1, autoscaling/v2, policy/v1,
# networking.k8s.io/v1).
KUBERNETES_VERSION = "1.33.0"
LABEL = "app.kubernetes.io/component"


def manifest_files() -> list[Path]:
    # kustomization.yaml is kustomize's own file, not a Kubernetes resource.
    return sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


def resources() -> list[dict]:
    docs = []
    for path in manifest_files():
        docs += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return docs


def one(kind: str, name: str | None = None) -> dict:
    found = [r for r in resources() if r["kind"] == kind and name in (None, r["metadata"]["name"])]
    assert len(found) == 1, (kind, name, found)
    return found[0]


def workloads() -> dict[str, dict]:
    """component label -> pod spec, for every Deployment and Job."""
    return {
        r["spec"]["template"]["metadata"]["labels"][LABEL]: r["spec"]["template"]["spec"]
        for r in resources()
        if r["kind"] in ("Deployment", "Job")
    }


@pytest.mark.parametrize("path", manifest_files(), ids=lambda p: p.name)
def test_manifest_is_valid_for_the_pinned_kubernetes_version(path):
    for document in yaml.safe_load_all(path.read_text()):
        if document:
            kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_the_validator_rejects_what_kubernetes_would():
    # The check above can fail: a wrong type and a misspelt field are both caught.
    web = one("Deployment", "marketplace-web")
    broken = {**web, "spec": {**web["spec"], "replicas": "two"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)
    misspelt = {**web, "spec": {**web["spec"], "replica": 2}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(misspelt, KUBERNETES_VERSION, strict=True)


def test_kustomization_lists_every_manifest_but_the_secret_template():
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    assert listed == {p.name for p in manifest_files()} - {"secret.example.yaml"}
    images = {image["name"] for image in kustomization["images"]}
    used = {c["image"] for spec in workloads().values() for c in spec["containers"]}
    assert used == images == {"sessions-marketplace"}


def test_the_pieces_are_there_and_refer_to_each_other():
    pods = workloads()
    assert set(pods) == {"web", "worker", "beat", "migrate"}
    web = one("Deployment", "marketplace-web")
    web_labels = web["spec"]["template"]["metadata"]["labels"]
    assert web["spec"]["selector"]["matchLabels"].items() <= web_labels.items()

    service = one("Service")
    assert service["spec"]["selector"].items() <= web_labels.items()
    port_names = {p["name"] for p in pods["web"]["containers"][0]["ports"]}
    assert service["spec"]["ports"][0]["targetPort"] in port_names

    ingress_backend = one("Ingress")["spec"]["rules"][0]["http"]["paths"][0]["backend"]
    assert ingress_backend["service"]["name"] == service["metadata"]["name"]
    assert ingress_backend["service"]["port"]["name"] == service["spec"]["ports"][0]["name"]

    hpa = one("HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "marketplace-web",
    }
    assert hpa["spec"]["minReplicas"] >= 2
    pdb = one("PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= web_labels.items()
    # With the HPA's minimum of pods, a drain still leaves one serving.
    assert pdb["spec"]["maxUnavailable"] < hpa["spec"]["minReplicas"]

    # Exactly one scheduler, and never two during a release.
    beat = one("Deployment", "marketplace-beat")
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"] == {"type": "Recreate"}

    # Migrations run in the Job, not in each web pod at start.
    job = pods["migrate"]
    assert job["containers"][0]["args"] == ["python", "manage.py", "migrate", "--noinput"]
    assert job["restartPolicy"] == "Never"
    assert one("ConfigMap")["data"]["DJANGO_MIGRATE"] == "false"
    assert pods["worker"]["containers"][0]["args"][0] == "worker"
    assert pods["beat"]["containers"][0]["args"] == ["beat"]


@pytest.mark.parametrize("component", ["web", "worker", "beat", "migrate"])
def test_every_pod_is_non_root_read_only_bounded_and_configured(component):
    spec = workloads()[component]
    assert spec["securityContext"]["runAsNonRoot"] is True
    # The image's own user (Dockerfile: USER 10001:10001).
    assert spec["securityContext"]["runAsUser"] == 10001
    assert spec["automountServiceAccountToken"] is False
    volumes = {v["name"]: v for v in spec["volumes"]}
    for container in spec["containers"]:
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"]["drop"] == ["ALL"]
        # /tmp is the one writable place: an emptyDir.
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        assert "emptyDir" in volumes[mounts["/tmp"]]  # noqa: S108
        for bound in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(container["resources"][bound]), bound
        assert container["envFrom"] == [
            {"configMapRef": {"name": "marketplace-config"}},
            {"secretRef": {"name": "marketplace-secrets"}},
        ]


def test_web_probes_ask_health_under_an_allowed_host():
    container = workloads()["web"]["containers"][0]
    allowed = one("ConfigMap")["data"]["DJANGO_ALLOWED_HOSTS"].split(",")
    # Readiness asks the database (503 takes the pod out of rotation); liveness only that the
    # process answers, so a database outage does not restart every pod at once.
    paths = {"startupProbe": "/api/health/", "readinessProbe": "/api/health/"}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        check = container[probe]["httpGet"]
        assert check["path"] == paths.get(probe, "/api/health/live/")
        assert check["port"] == "http"
        # The kubelet would send the pod's IP as Host, which Django answers with a 400.
        assert {"name": "Host", "value": allowed[0]} in check["httpHeaders"]
    for component in ("worker", "beat"):
        probe = workloads()[component]["containers"][0]["livenessProbe"]["exec"]["command"]
        assert probe == ["python", "/app/scripts/celery_healthcheck.py", component]
    # Beat's schedule file is where its health check looks, on the writable /tmp.
    schedule = one("ConfigMap")["data"]["CELERY_BEAT_SCHEDULE_FILENAME"]
    assert schedule.startswith("/tmp/")  # noqa: S108


def env_example_names() -> set[str]:
    names = set()
    for line in (REPO / ".env.example").read_text().splitlines():
        line = line.lstrip("# ")
        if "=" in line and line.split("=", 1)[0].isupper():
            names.add(line.split("=", 1)[0])
    return names


def test_config_names_are_documented_and_the_secret_holds_placeholders_only():
    config = one("ConfigMap")["data"]
    secret = one("Secret")["stringData"]
    documented = env_example_names()
    assert set(config) <= documented, set(config) - documented
    assert set(secret) <= documented, set(secret) - documented
    # Nothing is both a setting and a secret (envFrom would let the Secret win silently).
    assert not set(config) & set(secret)
    assert set(secret.values()) == {"REPLACE_ME"}
    assert {"DJANGO_SECRET_KEY", "DATABASE_URL", "REDIS_URL"} <= set(secret)
    # Several web pods: what APP_INSTANCES > 1 requires is configured.
    assert int(config["APP_INSTANCES"]) > 1
    assert config["AWS_STORAGE_BUCKET_NAME"]


@pytest.mark.slow
def test_the_configmap_and_a_filled_in_secret_pass_check_deploy():
    """What a pod would start with, once the Secret's placeholders are real values."""
    filled = {
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DATABASE_URL": "postgres://app:pw@db.example.com:5432/marketplace?sslmode=require",
        "REDIS_URL": "rediss://:pw@redis.example.com:6380/1",
        "CELERY_BROKER_URL": "rediss://:pw@redis.example.com:6380/0",
        "EMAIL_URL": "smtp+tls://mailer:pw@smtp.example.com:587",
    }
    secret = one("Secret")["stringData"]
    env = {
        **one("ConfigMap")["data"],
        **{name: filled.get(name, "") for name in secret},
    }
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    # And the placeholders themselves never start: the example key is refused.
    unfilled = manage("check", env={**one("ConfigMap")["data"], **secret})
    assert unfilled.returncode == 1
    assert "DJANGO_SECRET_KEY is too weak" in unfilled.stderr
