"""The OpenAPI document against the real server: named schemas, one error schema that every
error body matches, the request shapes the server takes, security only with keys, and docs
pages that work offline."""

from __future__ import annotations

import json
import socket
from html.parser import HTMLParser
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI

from augment.config import SOURCES, AugmentConfig
from service.app import create_app
from service.schemas import AugmentRequest, RequestLimits
from service.settings import ServiceSettings

jsonschema = pytest.importorskip("jsonschema")

LIMITS = {"max_items": 4, "max_text_chars": 300, "max_n": 8, "max_body_bytes": 4096}
SENTENCE = "The quiet film was a delight from start to finish."
KEY = "test-key"
NAMED = {
    "AugmentRequest", "TextsRequest", "PairsRequest", "AugmentResponse", "ItemOut", "VariantOut",
    "ReplacementOut", "ErrorResponse", "ValidationIssue", "ServiceStatus", "Sources",
    "PairFields", "TextFields",
}  # fmt: skip


@pytest.fixture(scope="module")
def server(serve):
    with serve(**LIMITS) as live:
        yield live


@pytest.fixture(scope="module")
def spec(server) -> dict:
    return httpx.get(f"{server.url}/openapi.json").json()


def validator(spec: dict, name: str):
    """A validator of the component schema `name`, resolving refs inside `spec`."""
    schema = {"$ref": f"#/components/schemas/{name}", "components": spec["components"]}
    return jsonschema.Draft202012Validator(schema)


def operations(spec: dict):
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            yield path, method, op


def test_every_schema_is_named_and_every_body_refers_to_one(spec):
    assert set(spec["components"]["schemas"]) == NAMED
    ids = {op["operationId"] for _, _, op in operations(spec)}
    assert ids == {"augment", "healthz", "readyz", "metrics"}
    body = spec["paths"]["/augment"]["post"]["requestBody"]
    assert body["required"] is True
    assert body["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/AugmentRequest"
    }
    request = spec["components"]["schemas"]["AugmentRequest"]
    assert request["oneOf"] == [
        {"$ref": "#/components/schemas/TextsRequest"},
        {"$ref": "#/components/schemas/PairsRequest"},
    ]
    for path, _, op in operations(spec):
        for status, response in op["responses"].items():
            for media, content in response.get("content", {}).items():
                if media == "application/json":
                    assert set(content["schema"]) == {"$ref"}, (path, status)


def test_every_error_response_is_documented_with_the_error_schema(spec):
    augment = spec["paths"]["/augment"]["post"]["responses"]
    assert {"408", "413", "415", "422", "500", "503"} <= set(augment)
    keyed = create_app(ServiceSettings(**LIMITS, api_keys=[KEY])).openapi()
    for doc in (spec, keyed):
        for path, _, op in operations(doc):
            for status, response in op["responses"].items():
                if int(status) < 400:
                    continue
                schema = response["content"]["application/json"]["schema"]["$ref"]
                # the probes answer 503 with their status report, like their 200
                probe = path in ("/healthz", "/readyz")
                expected = "ServiceStatus" if probe else "ErrorResponse"
                assert schema == f"#/components/schemas/{expected}", (path, status)


def test_bearer_auth_is_advertised_only_when_keys_are_set():
    open_doc = create_app(ServiceSettings(**LIMITS)).openapi()
    assert "securitySchemes" not in open_doc.get("components", {})
    for path, _, op in operations(open_doc):
        assert "security" not in op and "401" not in op["responses"], path
    keyed = create_app(ServiceSettings(**LIMITS, api_keys=[KEY])).openapi()
    assert keyed["components"]["securitySchemes"] == {
        "HTTPBearer": {
            "type": "http",
            "scheme": "bearer",
            "description": "one of the keys in KDAUG_API_KEYS",
        }
    }
    secured = {path for path, _, op in operations(keyed) if "security" in op}
    assert secured == {"/augment", "/metrics"}
    for path in secured:
        responses = next(iter(keyed["paths"][path].values()))["responses"]
        assert responses["401"]["content"]["application/json"]["schema"]["$ref"].endswith(
            "/ErrorResponse"
        )


# Bodies the server takes today, each valid under the documented schema too.
ACCEPTED = [
    {"texts": [SENTENCE]},
    {"texts": [SENTENCE, "A dull story."], "n": 2, "p": 0.3, "seed": -4, "labels": [1, None]},
    {"texts": [SENTENCE], "ids": [17], "fields": "both", "include_original": False},
    {"texts": [SENTENCE], "fields": "a", "sources": "both", "labels": ["pos"]},
    {"texts": [SENTENCE], "sources": "mlm", "n": 2},
    {"pairs": [[SENTENCE, "It was good."]], "fields": "b", "sources": "vectors", "ids": ["q"]},
    {"pairs": [[SENTENCE, "It was good."], ["Rain fell.", "It was wet."]], "labels": [0.5, 2]},
]
# Bodies the server refuses (422) that the schema refuses too.
REFUSED = [
    {}, {"texts": []}, {"texts": [SENTENCE], "pairs": [[SENTENCE, "b"]]}, {"texts": "a film"},
    {"texts": [1]}, {"pairs": [["only one"]]}, {"pairs": [["a", "b", "c"]]}, {"texts": ["a"], "n": 0},
    {"texts": ["a"], "n": 1001}, {"texts": ["a"], "n": "3"}, {"texts": ["a"], "n": True},
    {"texts": ["a"], "p": 0}, {"texts": ["a"], "p": "0.5"}, {"texts": ["a"], "seed": 2**70},
    {"texts": ["a"], "include_original": "true"}, {"texts": ["a"], "sources": "glove"},
    {"texts": ["a"], "fields": "b"}, {"texts": ["a"], "ids": [""]}, {"texts": ["a"], "colour": 1},
    {"pairs": [["a", "b"]], "fields": "c"}, {"texts": ["a"], "labels": [[1]]},
]  # fmt: skip
# What JSON schema cannot state: checks across fields, this server's own limits (the schema
# states the bounds of every server; the operation's description states this one's) and the
# sources it has loaded. The server refuses these (422) although they are valid under the schema.
CROSS_FIELD = [
    {"texts": ["a", "b"], "labels": [1]},
    {"texts": ["a", "b"], "ids": ["x", "x"]},
    {"texts": ["a", "b"], "ids": ["1", 1]},
    {"texts": ["   "]},
    {"pairs": [["a film", "\u0000"]]},
    {"texts": ["a"] * 5},
    {"texts": ["a" * 301]},
    {"texts": ["a"], "n": 9},
    {"texts": ["a"], "sources": "wordnet"},
]


@pytest.mark.parametrize(
    ("body", "valid", "status"),
    [(b, True, 200) for b in ACCEPTED]
    + [(b, False, 422) for b in REFUSED]
    + [(b, True, 422) for b in CROSS_FIELD],
    ids=lambda v: json.dumps(v) if isinstance(v, dict) else str(v),
)
def test_the_documented_request_schema_agrees_with_the_server(server, spec, body, valid, status):
    assert validator(spec, "AugmentRequest").is_valid(body) == valid
    r = httpx.post(f"{server.url}/augment", json=body, timeout=30)
    assert r.status_code == status, r.text
    schema = "AugmentResponse" if r.status_code == 200 else "ErrorResponse"
    assert validator(spec, schema).is_valid(r.json()), r.text


def test_the_documented_examples_are_valid_and_answered(server, spec):
    content = spec["paths"]["/augment"]["post"]["requestBody"]["content"]["application/json"]
    assert set(content["examples"]) == {"texts", "pairs"}
    for example in content["examples"].values():
        assert validator(spec, "AugmentRequest").is_valid(example["value"])
        r = httpx.post(f"{server.url}/augment", json=example["value"], timeout=30)
        assert r.status_code == 200, r.text


def test_the_server_also_takes_an_explicit_null_for_the_other_input():
    # Looser than the document (which leaves the other field out), as the service always was.
    assert AugmentRequest.model_validate({"texts": ["a film"], "pairs": None}).problems() == []


def test_the_limits_of_this_server_are_in_the_operation_description(spec):
    about = spec["paths"]["/augment"]["post"]["description"]
    assert "at most 4 texts or pairs of at most 300 characters" in about
    assert "n at most 8 (KDAUG_MAX_N)" in about and "KDAUG_MAX_REQUEST_WORK" in about


def test_request_models_are_classes_shared_by_apps_and_the_document_is_fastapis():
    """Two apps with different limits: the same request model, validated with each one's limits
    as context; the OpenAPI document is FastAPI's own, from the route's typed body."""
    small, large = (create_app(ServiceSettings(max_items=k)) for k in (2, 64))
    for app in (small, large):
        assert app.openapi.__func__ is FastAPI.openapi  # not replaced by a patched version
        body = app.openapi()["paths"]["/augment"]["post"]["requestBody"]
        assert body["content"]["application/json"]["schema"]["$ref"].endswith("/AugmentRequest")
    three = b'{"texts": ["a", "b", "c"]}'
    assert (
        len(AugmentRequest.model_validate_json(three, context=RequestLimits(4, 300, 8)).texts) == 3
    )
    with pytest.raises(ValueError, match="at most 2 items"):
        AugmentRequest.model_validate_json(three, context=RequestLimits(2, 300, 8))


def test_the_sampling_parameters_are_documented_as_the_config_declares_them(spec):
    """One declaration (AugmentConfig) for the config, the CLI flags and the request; the
    sources a request may name are the config's, and both (mlm and vectors)."""
    schemas = spec["components"]["schemas"]
    assert schemas["Sources"]["enum"] == [*SOURCES, "both"]
    assert schemas["PairFields"]["enum"] == ["a", "b", "both"]
    for shape in ("TextsRequest", "PairsRequest"):
        props = schemas[shape]["properties"]
        for name in ("n", "p", "seed", "fields", "include_original"):
            assert props[name]["description"] == AugmentConfig.model_fields[name].description
        n = props["n"]["anyOf"][0]
        assert (n["minimum"], n["maximum"]) == (1, 1000)  # as AugmentConfig.n
        assert props["p"]["anyOf"][0]["exclusiveMinimum"] == 0


def test_over_many_inputs_get_one_error_however_many_are_invalid(server):
    r = httpx.post(f"{server.url}/augment", json={"texts": [1] * 1000}, timeout=30)
    assert r.status_code == 422
    assert r.json()["detail"] == [
        {
            "loc": ["body", "texts"],
            "msg": "List should have at most 4 items after validation, not 1000",
            "type": "too_long",
        }
    ]


class FailingAugmenter:
    """The real augmenter's config and sources, with batches that fail."""

    def __init__(self, augmenter) -> None:
        self.config, self.loaded_sources = augmenter.config, augmenter.loaded_sources

    def versions(self):
        return {}

    def augment(self, records, params):
        raise RuntimeError("a model error")


class BrokenSources(FailingAugmenter):
    """A fault the routes do not expect (its sources cannot be read)."""

    @property
    def loaded_sources(self):
        raise RuntimeError("a bug")

    @loaded_sources.setter
    def loaded_sources(self, value) -> None:
        pass


def raw(live, data: bytes) -> tuple[int, dict]:
    """Send `data` over a socket; the status and JSON body of the answer (the server closes)."""
    url = urlsplit(live.url)
    with socket.create_connection((url.hostname, url.port), timeout=20) as sock:
        sock.sendall(data)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def test_every_error_body_matches_the_error_schema(server, spec, serve):
    from tests.service.conftest import StepAugmenter

    error = validator(spec, "ErrorResponse")
    url = f"{server.url}/augment"
    seen = {}
    cases = {
        "415": lambda: httpx.post(url, content=b'{"texts": ["a"]}'),
        "422 schema": lambda: httpx.post(url, json={"texts": []}),
        "422 json": lambda: httpx.post(url, content=b"{", headers={"Content-Type": "application/json"}),
        "404": lambda: httpx.get(f"{server.url}/nowhere"),
        "405": lambda: httpx.get(url),
    }  # fmt: skip
    for name, send in cases.items():
        r = send()
        seen[name] = (r.status_code, r.json())
    head = b"POST /augment HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
    seen["413 body"] = raw(server, head + b"Content-Length: 100000\r\n\r\n")
    keyed = {**LIMITS, "api_keys": [KEY], "max_request_work": 10}
    with serve(**keyed, header_timeout_s=0.3, body_timeout_s=0.3) as live:
        r = httpx.post(f"{live.url}/augment", json={"texts": ["a"]})
        seen["401"] = (r.status_code, r.json())
        auth = {"Authorization": f"Bearer {KEY}"}
        r = httpx.post(f"{live.url}/augment", json={"texts": [SENTENCE], "n": 8}, headers=auth)
        seen["413 work"] = (r.status_code, r.json())
        seen["408 headers"] = raw(live, b"POST /augment HTTP/1.1\r\n")
        authorized = head + f"Authorization: Bearer {KEY}\r\n".encode()
        seen["408 body"] = raw(live, authorized + b"Content-Length: 40\r\n\r\n{")
    with serve(**LIMITS, wrap=StepAugmenter, request_timeout_s=0.2) as live:
        r = httpx.post(f"{live.url}/augment", json={"texts": [SENTENCE]}, timeout=30)
        live.state.augmenter.release(10)
        seen["503"] = (r.status_code, r.json())
    for wrap, name in ((FailingAugmenter, "500 model"), (BrokenSources, "500 bug")):
        with serve(**LIMITS, wrap=wrap) as live:
            r = httpx.post(f"{live.url}/augment", json={"texts": [SENTENCE]}, timeout=30)
            seen[name] = (r.status_code, r.json())
    for name, (status, body) in seen.items():
        assert str(status) == name.split()[0], (name, status, body)
        assert error.is_valid(body), (name, body)
        assert body["detail"], name
        if status != 422:
            assert isinstance(body["detail"], str) and "\n" not in body["detail"], (name, body)


def test_probes_answer_the_documented_status(server, spec, augmenter):
    status = validator(spec, "ServiceStatus")
    health, ready = httpx.get(f"{server.url}/healthz"), httpx.get(f"{server.url}/readyz")
    assert status.is_valid(health.json()) and status.is_valid(ready.json())
    assert ready.json()["mode"] == augmenter.config.mode
    assert ready.json()["torch_threads"] == server.state.settings.model_threads()


class Links(HTMLParser):
    """Every URL a page loads or links to (src, href), and its inline script text."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs) -> None:
        self.urls += [v for k, v in attrs if k in ("src", "href", "spec-url") and v]
        self._in_script = tag == "script"

    def handle_endtag(self, tag) -> None:
        self._in_script = False

    def handle_data(self, data) -> None:
        if self._in_script:
            self.scripts.append(data)


ASSET_TYPES = {".js": "javascript", ".css": "text/css", ".png": "image/png", ".json": "json"}


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_only_assets_this_server_serves(server, page):
    r = httpx.get(f"{server.url}{page}")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "http://" not in r.text and "https://" not in r.text and "//cdn" not in r.text
    links = Links()
    links.feed(r.text)
    urls = links.urls + [u for s in links.scripts for u in ("/openapi.json",) if u in s]
    assert any(u.endswith(".js") for u in urls) and "/openapi.json" in urls, urls
    for url in urls:
        assert url.startswith("/") and not url.startswith("//"), url
        asset = httpx.get(f"{server.url}{url}")
        assert asset.status_code == 200, url
        kind = ASSET_TYPES[url[url.rindex(".") :]]
        assert kind in asset.headers["content-type"], (url, asset.headers["content-type"])
        assert len(asset.content) > 1000, url


def test_docs_assets_count_in_the_metrics_as_themselves(server, metric):
    httpx.get(f"{server.url}/docs-assets/swagger-ui.css")
    page = httpx.get(f"{server.url}/metrics").text
    route = {"route": "/docs-assets/swagger-ui.css", "status": "200"}
    assert metric(page, "kdaug_requests_total", **route) >= 1
