"""Cloud Run's Knative serving v1 shapes, to and from the emulator's ``run_v2`` resources.

The Admin API v1 (``/apis/serving.knative.dev/v1/namespaces/PROJECT/...``) shows the same
services and revisions as v2, in Kubernetes form: ``metadata`` / ``spec`` / ``status``,
``status.conditions`` with ``"True"|"False"|"Unknown"``, secrets as env
``valueFrom.secretKeyRef{name: SECRET, key: VERSION}``, traffic targets with
``revisionName`` / ``latestRevision``. Field names follow the generated ``run/v1`` messages
shipped with gcloud (``generated_clients/apis/run/v1/run_v1_messages.py``); no proto-plus
types exist for v1, so these functions build and read plain JSON. Pure functions, no I/O.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from google.cloud import run_v2
from google.protobuf import duration_pb2  # type: ignore[import-untyped]

from rollsafe.emulator._google import invalid_argument, to_dict
from rollsafe.emulator._run_spec import LATEST, REVISION_TYPE, parse_name

__all__ = [
    "API_VERSION",
    "LOCATION_LABEL",
    "revision_json",
    "service_json",
    "service_spec",
]

API_VERSION = "serving.knative.dev/v1"
LOCATION_LABEL = "cloud.googleapis.com/location"
_MIN_SCALE = "autoscaling.knative.dev/minScale"
_MAX_SCALE = "autoscaling.knative.dev/maxScale"
_CPU_THROTTLING = "run.googleapis.com/cpu-throttling"
_CPU_BOOST = "run.googleapis.com/startup-cpu-boost"
_CREATOR = "serving.knative.dev/creator"
_MODIFIER = "serving.knative.dev/lastModifier"
_Ingress = run_v2.IngressTraffic
_INGRESS = {
    _Ingress.INGRESS_TRAFFIC_ALL: "all",
    _Ingress.INGRESS_TRAFFIC_INTERNAL_ONLY: "internal",
    _Ingress.INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER: "internal-and-cloud-load-balancing",
}
#: annotations and labels Cloud Run writes itself; a PUT that sends them back changes nothing
_SYSTEM_PREFIXES = ("serving.knative.dev/", "run.googleapis.com/ingress-status")
_STATUS = {
    run_v2.Condition.State.CONDITION_SUCCEEDED: "True",
    run_v2.Condition.State.CONDITION_FAILED: "False",
}


def _time(value: datetime | None) -> str | None:
    if value is None or not value.timestamp():
        return None
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _resource_version(etag: str) -> str:
    return etag.strip('"')


def _condition(cond: run_v2.Condition) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": cond.type_,
        "status": _STATUS.get(cond.state, "Unknown"),
    }
    if cond.message:
        out["message"] = cond.message
    if cond.state == run_v2.Condition.State.CONDITION_FAILED:
        # Knative spells reasons in CamelCase: REVISION_FAILED -> RevisionFailed
        name = cond.reason.name if cond.reason else "REVISION_FAILED"
        out["reason"] = "".join(word.capitalize() for word in name.split("_"))
        out["severity"] = "Error"
    when = _time(cond.last_transition_time)
    if when:
        out["lastTransitionTime"] = when
    return out


def _env_json(var: run_v2.EnvVar) -> dict[str, Any]:
    if "value_source" in var:
        ref = var.value_source.secret_key_ref
        return {
            "name": var.name,
            "valueFrom": {"secretKeyRef": {"name": ref.secret, "key": ref.version or "latest"}},
        }
    return {"name": var.name, "value": var.value}


def _container_json(container: run_v2.Container) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if container.name:
        out["name"] = container.name
    out["image"] = container.image
    if container.command:
        out["command"] = list(container.command)
    if container.args:
        out["args"] = list(container.args)
    if container.working_dir:
        out["workingDir"] = container.working_dir
    if container.env:
        out["env"] = [_env_json(var) for var in container.env]
    if container.ports:
        out["ports"] = [
            {"name": port.name or "http1", "containerPort": port.container_port}
            for port in container.ports
        ]
    if container.resources.limits:
        out["resources"] = {"limits": dict(container.resources.limits)}
    for field, key in (("startup_probe", "startupProbe"), ("liveness_probe", "livenessProbe")):
        if field in container:
            out[key] = to_dict(getattr(container, field), defaults=False)
    return out


def _template_annotations(template: run_v2.RevisionTemplate) -> dict[str, str]:
    annotations = dict(template.annotations)
    # v2 keeps these per container; v1 says them once, on the template
    resources = [c.resources for c in template.containers]
    if any(r.cpu_idle for r in resources):
        annotations[_CPU_THROTTLING] = "true"
    if any(r.startup_cpu_boost for r in resources):
        annotations[_CPU_BOOST] = "true"
    if template.scaling.min_instance_count:
        annotations[_MIN_SCALE] = str(template.scaling.min_instance_count)
    if template.scaling.max_instance_count:
        annotations[_MAX_SCALE] = str(template.scaling.max_instance_count)
    return annotations


def _revision_spec(
    containers: list[run_v2.Container],
    concurrency: int,
    timeout: duration_pb2.Duration | Any,
    service_account: str,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "containerConcurrency": concurrency or 80,
        "timeoutSeconds": int(timeout.total_seconds()) if timeout else 300,
        "containers": [_container_json(c) for c in containers],
    }
    if service_account:
        spec["serviceAccountName"] = service_account
    return spec


def _traffic_target(target: run_v2.TrafficTarget | run_v2.TrafficTargetStatus) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if target.type_ == LATEST:
        out["latestRevision"] = True
    if target.revision:
        out["revisionName"] = target.revision
    out["percent"] = target.percent
    if target.tag:
        out["tag"] = target.tag
    uri = getattr(target, "uri", "")
    if uri:
        out["url"] = uri
    return out


def service_json(service: run_v2.Service) -> dict[str, Any]:
    """The Knative Service that ``service`` is."""
    project, location, service_id = parse_name(service.name)
    annotations = dict(service.annotations)
    annotations[_CREATOR] = service.creator
    annotations[_MODIFIER] = service.last_modifier
    ingress = _INGRESS.get(service.ingress, "all")
    annotations["run.googleapis.com/ingress"] = ingress
    annotations["run.googleapis.com/ingress-status"] = ingress
    metadata: dict[str, Any] = {
        "name": service_id,
        "namespace": project,
        "selfLink": f"/apis/{API_VERSION}/namespaces/{project}/services/{service_id}",
        "uid": service.uid,
        "resourceVersion": _resource_version(service.etag),
        "generation": service.generation,
        "creationTimestamp": _time(service.create_time),
        "labels": {**service.labels, LOCATION_LABEL: location},
        "annotations": annotations,
    }
    template = service.template
    template_meta: dict[str, Any] = {}
    if template.revision:
        template_meta["name"] = template.revision
    if template.labels:
        template_meta["labels"] = dict(template.labels)
    template_annotations = _template_annotations(template)
    if template_annotations:
        template_meta["annotations"] = template_annotations
    spec = {
        "template": {
            "metadata": template_meta,
            "spec": _revision_spec(
                list(template.containers),
                template.max_instance_request_concurrency,
                template.timeout,
                template.service_account,
            ),
        },
        "traffic": [_traffic_target(t) for t in service.traffic],
    }
    conditions = [
        _condition(c) for c in (service.terminal_condition, *service.conditions) if c.type_
    ]
    if service.reconciling:
        # Knative resets every condition while a new generation reconciles
        for cond in conditions:
            cond["status"] = "Unknown"
            for key in ("message", "reason", "severity"):
                cond.pop(key, None)
    status: dict[str, Any] = {
        "observedGeneration": service.observed_generation,
        "conditions": conditions,
    }
    if service.latest_ready_revision:
        status["latestReadyRevisionName"] = service.latest_ready_revision.rsplit("/", 1)[-1]
    if service.latest_created_revision:
        status["latestCreatedRevisionName"] = service.latest_created_revision.rsplit("/", 1)[-1]
    if service.traffic_statuses:
        status["traffic"] = [_traffic_target(t) for t in service.traffic_statuses]
    if service.uri:
        status["url"] = service.uri
        status["address"] = {"url": service.uri}
    return {
        "apiVersion": API_VERSION,
        "kind": "Service",
        "metadata": metadata,
        "spec": spec,
        "status": status,
    }


def revision_json(
    revision: run_v2.Revision, generation: int = 1, *, active: bool = False
) -> dict[str, Any]:
    """The Knative Revision that ``revision`` is (``generation``: its service's, when made;
    ``active``: it serves traffic or a tag, gcloud's ACTIVE column)."""
    project, location, service_id = parse_name(revision.service)
    rid = revision.name.rsplit("/", 1)[-1]
    labels = {
        **revision.labels,
        LOCATION_LABEL: location,
        "serving.knative.dev/service": service_id,
        "serving.knative.dev/configuration": service_id,
        "serving.knative.dev/configurationGeneration": str(generation),
    }
    annotations = dict(revision.annotations)
    annotations[_CREATOR] = revision.creator
    if revision.scaling.min_instance_count:
        annotations[_MIN_SCALE] = str(revision.scaling.min_instance_count)
    if revision.scaling.max_instance_count:
        annotations[_MAX_SCALE] = str(revision.scaling.max_instance_count)
    return {
        "apiVersion": API_VERSION,
        "kind": "Revision",
        "metadata": {
            "name": rid,
            "namespace": project,
            "selfLink": f"/apis/{API_VERSION}/namespaces/{project}/revisions/{rid}",
            "uid": revision.uid,
            "resourceVersion": _resource_version(revision.etag),
            "generation": 1,
            "creationTimestamp": _time(revision.create_time),
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [
                {
                    "kind": "Configuration",
                    "name": service_id,
                    "apiVersion": API_VERSION,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": _revision_spec(
            list(revision.containers),
            revision.max_instance_request_concurrency,
            revision.timeout,
            revision.service_account,
        ),
        "status": {
            "observedGeneration": 1,
            "conditions": [*(_condition(c) for c in revision.conditions), _active(active)],
            "logUrl": revision.log_uri,
            "serviceName": service_id,
        },
    }


def _active(active: bool) -> dict[str, Any]:
    if active:
        return {"type": "Active", "status": "True", "severity": "Info"}
    return {
        "type": "Active",
        "status": "False",
        "reason": "Reserve",
        "message": "Revision retired.",
        "severity": "Info",
    }


# -- from Knative -----------------------------------------------------------------------


def _object(data: Any, where: str) -> dict[str, Any]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise invalid_argument(f"{where}: expected an object")
    return data


def _list(data: Any, where: str) -> list[Any]:
    if data is None:
        return []
    if not isinstance(data, list):
        raise invalid_argument(f"{where}: expected a list")
    return data


def _strings(data: Any, where: str) -> dict[str, str]:
    return {str(k): str(v) for k, v in _object(data, where).items()}


def _env_var(data: Any, where: str) -> run_v2.EnvVar:
    item = _object(data, where)
    name = str(item.get("name", ""))
    source = _object(item.get("valueFrom"), f"{where}.valueFrom")
    if not source:
        return run_v2.EnvVar(name=name, value=str(item.get("value", "")))
    ref = _object(source.get("secretKeyRef"), f"{where}.valueFrom.secretKeyRef")
    if not ref.get("name"):
        raise invalid_argument(f"{where}.valueFrom.secretKeyRef.name: required")
    if not ref.get("key"):
        raise invalid_argument(f"{where}.valueFrom.secretKeyRef.key: required")
    return run_v2.EnvVar(
        name=name,
        value_source=run_v2.EnvVarSource(
            secret_key_ref=run_v2.SecretKeySelector(
                secret=str(ref["name"]), version=str(ref["key"])
            )
        ),
    )


def _probe(data: Any, where: str) -> run_v2.Probe:
    import json

    try:
        probe: run_v2.Probe = run_v2.Probe.from_json(
            json.dumps(_object(data, where)), ignore_unknown_fields=True
        )
    except Exception:  # protobuf raises ParseError, ValueError, TypeError ...
        raise invalid_argument(f"{where}: not a valid probe") from None
    return probe


def _container(data: Any, where: str) -> run_v2.Container:
    item = _object(data, where)
    container = run_v2.Container(
        name=str(item.get("name", "")),
        image=str(item.get("image", "")),
        command=[str(c) for c in _list(item.get("command"), f"{where}.command")],
        args=[str(a) for a in _list(item.get("args"), f"{where}.args")],
        working_dir=str(item.get("workingDir", "")),
        env=[
            _env_var(v, f"{where}.env[{i}]")
            for i, v in enumerate(_list(item.get("env"), f"{where}.env"))
        ],
    )
    for i, port in enumerate(_list(item.get("ports"), f"{where}.ports")):
        port = _object(port, f"{where}.ports[{i}]")
        container.ports.append(
            run_v2.ContainerPort(
                name=str(port.get("name", "")), container_port=int(port.get("containerPort", 0))
            )
        )
    resources = _object(item.get("resources"), f"{where}.resources")
    if resources.get("limits"):
        container.resources.limits = _strings(resources["limits"], f"{where}.resources.limits")
    if "startupProbe" in item:
        container.startup_probe = _probe(item["startupProbe"], f"{where}.startupProbe")
    if "livenessProbe" in item:
        container.liveness_probe = _probe(item["livenessProbe"], f"{where}.livenessProbe")
    return container


def _int(value: Any, where: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise invalid_argument(f"{where}: {value!r} is not an integer") from None


def _template(data: Any, current: run_v2.RevisionTemplate) -> run_v2.RevisionTemplate:
    """The v2 template a Knative template means; what v1 cannot say is kept from ``current``."""
    template: run_v2.RevisionTemplate = run_v2.RevisionTemplate.deserialize(
        run_v2.RevisionTemplate.serialize(current)
    )
    item = _object(data, "spec.template")
    meta = _object(item.get("metadata"), "spec.template.metadata")
    spec = _object(item.get("spec"), "spec.template.spec")
    annotations = _strings(meta.get("annotations"), "spec.template.metadata.annotations")
    scaling = run_v2.RevisionScaling()
    if _MIN_SCALE in annotations:
        scaling.min_instance_count = _int(annotations.pop(_MIN_SCALE), _MIN_SCALE)
    if _MAX_SCALE in annotations:
        scaling.max_instance_count = _int(annotations.pop(_MAX_SCALE), _MAX_SCALE)
    template.scaling = scaling
    throttled = annotations.pop(_CPU_THROTTLING, "false") == "true"
    boosted = annotations.pop(_CPU_BOOST, "false") == "true"
    template.revision = str(meta.get("name", ""))
    template.labels = _strings(meta.get("labels"), "spec.template.metadata.labels")
    template.annotations = annotations
    template.containers = [
        _container(c, f"spec.template.spec.containers[{i}]")
        for i, c in enumerate(_list(spec.get("containers"), "spec.template.spec.containers"))
    ]
    for container in template.containers:
        container.resources.cpu_idle = throttled
        container.resources.startup_cpu_boost = boosted
    template.service_account = str(spec.get("serviceAccountName", ""))
    if "containerConcurrency" in spec:
        template.max_instance_request_concurrency = _int(
            spec["containerConcurrency"], "containerConcurrency"
        )
    if "timeoutSeconds" in spec:
        template.timeout = duration_pb2.Duration(
            seconds=_int(spec["timeoutSeconds"], "timeoutSeconds")
        )
    return template


def _target(data: Any, where: str) -> run_v2.TrafficTarget:
    item = _object(data, where)
    latest = bool(item.get("latestRevision"))
    revision = str(item.get("revisionName", ""))
    if latest and revision:
        raise invalid_argument(f"{where}: latestRevision must not be set with revisionName")
    return run_v2.TrafficTarget(
        type_=LATEST if latest or not revision else REVISION_TYPE,
        revision="" if latest else revision,
        percent=_int(item.get("percent", 0), f"{where}.percent"),
        tag=str(item.get("tag", "")),
    )


def service_spec(body: dict[str, Any], current: run_v2.Service) -> run_v2.Service:
    """The v2 spec fields (labels, annotations, template, traffic) of a Knative Service."""
    meta = _object(body.get("metadata"), "metadata")
    spec = _object(body.get("spec"), "spec")
    labels = _strings(meta.get("labels"), "metadata.labels")
    labels.pop(LOCATION_LABEL, None)
    annotations = {
        key: value
        for key, value in _strings(meta.get("annotations"), "metadata.annotations").items()
        if not key.startswith(_SYSTEM_PREFIXES) and key != "run.googleapis.com/ingress"
    }
    traffic = [
        _target(t, f"spec.traffic[{i}]")
        for i, t in enumerate(_list(spec.get("traffic"), "spec.traffic"))
    ]
    return run_v2.Service(
        labels=labels,
        annotations=annotations,
        template=_template(spec.get("template"), current.template),
        traffic=traffic,
    )
