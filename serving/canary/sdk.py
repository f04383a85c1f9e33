"""Strict conversion of InferenceService dicts to KServe SDK models.

kubernetes-validate has no schema for CRDs, and neither the KServe nor the kubernetes ApiClient can
deserialize a whole InferenceService (each only knows its own models, and both silently drop keys they
do not know). This walker resolves every type name in `openapi_types` against both model packages,
rejects unknown keys and mistyped values with their path, builds the typed SDK object (running the
models' own client-side checks) and checks that the SDK serializes it back to the same dict.
"""
from __future__ import annotations

import difflib
import re
from typing import Any

ISVC_MODEL = "V1beta1InferenceService"
ISVC_API_VERSION = "serving.kserve.io/v1beta1"
ISVC_KIND = "InferenceService"

_LIST = re.compile(r"^list\[(.+)\]$")
_DICT = re.compile(r"^dict\(([^,]+), (.+)\)$")
# Type names the SDK uses without generating a model for them.
_QUANTITY_TYPES = {"ResourceQuantity"}


class SchemaError(ValueError):
    """A dict does not match the SDK model; `problems` lists each wrong field with its path."""

    def __init__(self, model: str, problems: list[str]):
        self.model = model
        self.problems = problems
        super().__init__(f"{model} does not match the KServe SDK schema:\n  " + "\n  ".join(problems))


def _model_class(name: str) -> type | None:
    import kserve.models
    import kubernetes.client.models

    return getattr(kserve.models, name, None) or getattr(kubernetes.client.models, name, None)


def _configuration(cls: type, validate: bool) -> Any:
    """The Configuration class the model's module expects, with client-side checks on or off."""
    if cls.__module__.startswith("kserve."):
        from kserve.configuration import Configuration
    else:
        from kubernetes.client import Configuration
    config = Configuration()
    config.client_side_validation = validate
    return config


def _primitive_problem(value: Any, type_name: str) -> str | None:
    if type_name == "str" or type_name in ("date", "datetime"):
        ok = isinstance(value, str)
    elif type_name == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif type_name == "float":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif type_name == "bool":
        ok = isinstance(value, bool)
    elif type_name == "object":
        ok = True
    elif type_name in _QUANTITY_TYPES:
        ok = isinstance(value, (str, int, float)) and not isinstance(value, bool)
    else:
        return f"no SDK model named {type_name}"
    return None if ok else f"expected {type_name}, got {type(value).__name__} {value!r}"


def _build(value: Any, type_name: str, path: str, problems: list[str], validate: bool) -> Any:
    if value is None:
        return None
    if m := _LIST.match(type_name):
        if not isinstance(value, list):
            problems.append(f"{path}: expected a list of {m.group(1)}, got {type(value).__name__}")
            return None
        return [_build(item, m.group(1), f"{path}[{i}]", problems, validate) for i, item in enumerate(value)]
    if m := _DICT.match(type_name):
        if not isinstance(value, dict):
            problems.append(f"{path}: expected a mapping of {m.group(2)}, got {type(value).__name__}")
            return None
        return {k: _build(v, m.group(2), f"{path}.{k}", problems, validate) for k, v in value.items()}
    cls = _model_class(type_name)
    if cls is None:
        if problem := _primitive_problem(value, type_name):
            problems.append(f"{path}: {problem}")
        return value
    if not isinstance(value, dict):
        problems.append(f"{path}: expected a {type_name} mapping, got {type(value).__name__} {value!r}")
        return None
    by_json_key = {json_key: attr for attr, json_key in cls.attribute_map.items()}
    kwargs: dict[str, Any] = {}
    for key, item in value.items():
        attr = by_json_key.get(key)
        child = f"{path}.{key}" if path else key
        if attr is None:
            close = difflib.get_close_matches(key, by_json_key, n=3)
            hint = f"did you mean {' or '.join(close)}?" if close else f"known: {', '.join(sorted(by_json_key))}"
            problems.append(f"{child}: unknown field of {type_name} ({hint})")
            continue
        kwargs[attr] = _build(item, cls.openapi_types[attr], child, problems, validate)
    try:
        obj = cls(**kwargs, local_vars_configuration=_configuration(cls, validate))
    except (ValueError, TypeError) as exc:
        problems.append(f"{path or type_name}: {exc}")
        return None
    # Some constructors default absent fields to '' or 0 (ModelSpec.name=''), which would then be
    # sent to the cluster; clear them so the object carries exactly the fields of `value`.
    for attr in cls.openapi_types:
        if attr not in kwargs and getattr(obj, attr) is not None:
            setattr(obj, f"_{attr}", None)
    return obj


def to_sdk_model(data: dict[str, Any], model: str = ISVC_MODEL, *, validate: bool = True) -> Any:
    """Build the SDK object `model` from `data`, or raise `SchemaError` naming every wrong field.

    `validate=False` turns off the models' required-field checks, for partial objects such as a
    merge patch; unknown keys and mistyped values are rejected either way.
    """
    problems: list[str] = []
    obj = _build(data, model, "", problems, validate)
    if not problems:
        from kubernetes.client import ApiClient

        back = ApiClient().sanitize_for_serialization(obj)
        if back != data:
            problems.append(f"the SDK serializes the object differently: {back!r}")
    if problems:
        raise SchemaError(model, problems)
    return obj


def check_inference_service(data: dict[str, Any]) -> Any:
    """Check a whole InferenceService (as rendered by kustomize) and return the SDK object."""
    problems = []
    if data.get("apiVersion") != ISVC_API_VERSION:
        problems.append(f"apiVersion: expected {ISVC_API_VERSION}, got {data.get('apiVersion')!r}")
    if data.get("kind") != ISVC_KIND:
        problems.append(f"kind: expected {ISVC_KIND}, got {data.get('kind')!r}")
    if problems:
        raise SchemaError(ISVC_MODEL, problems)
    return to_sdk_model(data, ISVC_MODEL, validate=True)
