"""Property-based fuzzing of POST /augment from its own OpenAPI schema: never a 5xx."""

from __future__ import annotations

import json

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FUZZ = settings(
    max_examples=120,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def from_schema(schema: dict, spec: dict) -> st.SearchStrategy:
    """Values valid under a JSON schema of `spec` (the subset pydantic emits for the request
    models; `$ref`s point into the spec's components)."""
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return st.one_of([from_schema(s, spec) for s in schema[key]])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if kind == "null":
        return st.none()
    if kind == "boolean":
        return st.booleans()
    if kind == "integer":
        return st.integers(schema.get("minimum"), schema.get("maximum"))
    if kind == "number":
        low = schema.get("minimum", schema.get("exclusiveMinimum"))
        return st.floats(
            low, schema.get("maximum"), exclude_min="exclusiveMinimum" in schema, allow_nan=False
        ).filter(lambda x: abs(x) < 1e300)
    if kind == "string":
        return st.text(min_size=schema.get("minLength", 0), max_size=schema.get("maxLength", 60))
    if kind == "array" and "prefixItems" in schema:
        return st.tuples(*(from_schema(s, spec) for s in schema["prefixItems"])).map(list)
    if kind == "array":
        size = {"min_size": schema.get("minItems", 0), "max_size": schema.get("maxItems", 4)}
        return st.lists(from_schema(schema.get("items", {"type": "string"}), spec), **size)
    if kind == "object":
        props = {k: from_schema(v, spec) for k, v in schema["properties"].items()}
        needed = schema.get("required", [])
        optional = {k: v for k, v in props.items() if k not in needed}
        return st.fixed_dictionaries({k: props[k] for k in needed}, optional=optional)
    raise ValueError(f"schema not covered: {schema}")


def without_labels_and_ids(spec: dict, shape: str) -> dict:
    """A request shape (TextsRequest or PairsRequest) without ids and labels, so that most
    examples reach the model (their lengths must match the inputs')."""
    schema = dict(spec["components"]["schemas"][shape])
    schema["properties"] = {
        k: v for k, v in schema["properties"].items() if k not in ("labels", "ids")
    }
    return schema


@pytest.fixture(scope="module")
def server(serve):
    with serve(max_items=4, max_text_chars=120, max_n=4, batch_max_wait_ms=0) as live:
        yield live


@pytest.fixture(scope="module")
def spec(server) -> dict:
    return httpx.get(f"{server.url}/openapi.json").json()


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c


def check(response: httpx.Response) -> None:
    assert response.status_code < 500, (response.status_code, response.text)
    body = response.json()
    if response.status_code == 200:
        for item in body["results"]:
            assert all(v["id"] == item["id"] for v in item["variants"])
    else:
        assert response.status_code == 422 and body["detail"], body


def test_bodies_valid_under_the_schema_never_fail(client, spec):
    body = spec["paths"]["/augment"]["post"]["requestBody"]["content"]["application/json"]
    bodies = from_schema(body["schema"], spec)
    for shape in ("TextsRequest", "PairsRequest"):
        bodies |= from_schema(without_labels_and_ids(spec, shape), spec)
    seen = set()

    @FUZZ
    @given(body=bodies)
    def run(body):
        response = client.post("/augment", json=body)
        check(response)
        seen.add(response.status_code)

    run()
    assert seen == {200, 422}

    run()


def test_wrongly_typed_fields_get_422_not_5xx(client, spec):
    shapes = (spec["components"]["schemas"][s] for s in ("TextsRequest", "PairsRequest"))
    fields = {name: json_values for shape in shapes for name in shape["properties"]}

    @FUZZ
    @given(body=st.fixed_dictionaries({}, optional=fields) | json_values)
    def run(body):
        raw = json.dumps(body).encode()  # also for None: json=None would send no body
        check(client.post("/augment", content=raw, headers={"Content-Type": "application/json"}))

    run()


def test_arbitrary_bytes_get_422_not_5xx(client):
    @settings(FUZZ, max_examples=60)
    @given(raw=st.binary(max_size=200))
    def run(raw):
        check(client.post("/augment", content=raw, headers={"Content-Type": "application/json"}))

    run()
