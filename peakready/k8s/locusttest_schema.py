"""JSON Schema of the ``LocustTest`` custom resource (``locust.io/v2``) of the Locust
Kubernetes operator (AbdelrhmanHamouda/locust-k8s-operator 2.3.0), written from its
documented fields (``api/v2/locusttest_types.go``, ``docs/*.md``; see
docs/load.md#kubernetes). Only what the operator documents is allowed
(``additionalProperties: false``), so a field it would ignore or reject fails here first.
Kubernetes' own nested objects (resources, affinity, volumes, env sources) are checked
for their type only: their schema is Kubernetes', not the operator's.
"""

from __future__ import annotations

from typing import Any

_OBJ: dict[str, Any] = {"type": "object"}
_STR_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
_ARGS = {"type": "array", "items": {"type": "string"}}
_CONFIGMAP_REF = {"type": "string", "minLength": 1}


def _pod(extra: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False, "required": required,
            "properties": {"command": {"type": "string", "minLength": 1},
                           "resources": _OBJ, "labels": _STR_MAP, "annotations": _STR_MAP,
                           "extraArgs": _ARGS, **extra}}


LOCUSTTEST_V2: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "locust.io/v2"},
        "kind": {"const": "LocustTest"},
        "metadata": {"type": "object", "required": ["name"], "properties": {
            "name": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
                     "maxLength": 63},
            "namespace": {"type": "string"}, "labels": _STR_MAP, "annotations": _STR_MAP}},
        "spec": {
            "type": "object", "additionalProperties": False,
            "required": ["image", "master", "worker"],
            "properties": {
                "image": {"type": "string", "minLength": 1},
                "imagePullPolicy": {"enum": ["Always", "IfNotPresent", "Never"]},
                "imagePullSecrets": {"type": "array"},
                "master": _pod({"autostart": {"type": "boolean"},
                                "autoquit": {"type": "object", "additionalProperties": False,
                                             "properties": {
                                                 "enabled": {"type": "boolean"},
                                                 "timeout": {"type": "integer",
                                                             "minimum": 0}}}},
                               ["command"]),
                "worker": _pod({"replicas": {"type": "integer", "minimum": 1}},
                               ["command", "replicas"]),
                "testFiles": {"type": "object", "additionalProperties": False,
                              "properties": {"configMapRef": _CONFIGMAP_REF,
                                             "libConfigMapRef": _CONFIGMAP_REF}},
                "scheduling": {"type": "object", "additionalProperties": False,
                               "properties": {"affinity": _OBJ, "tolerations": {"type": "array"},
                                              "nodeSelector": _STR_MAP,
                                              "runtimeClassName": {"type": "string"}}},
                "env": {"type": "object", "additionalProperties": False, "properties": {
                    "configMapRefs": {"type": "array"}, "secretRefs": {"type": "array"},
                    "variables": {"type": "array", "items": {
                        "type": "object", "required": ["name"],
                        "properties": {"name": {"type": "string"},
                                       "value": {"type": "string"}}}},
                    "secretMounts": {"type": "array"}}},
                "volumes": {"type": "array", "items": {"type": "object", "required": ["name"]}},
                "volumeMounts": {"type": "array", "items": {
                    "type": "object", "required": ["name", "mountPath"],
                    "properties": {"name": {"type": "string"}, "mountPath": {"type": "string"},
                                   "subPath": {"type": "string"},
                                   "readOnly": {"type": "boolean"},
                                   "target": {"enum": ["master", "worker", "both"]}}}},
                "security": _OBJ,
                "observability": _OBJ,
            },
        },
    },
}
