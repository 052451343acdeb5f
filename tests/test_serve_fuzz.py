"""Schemathesis fuzzes every route of the OpenAPI schema: no input may cause a server error."""

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance

from promolift.serve.app import create_app
from promolift.serve.auth import add_key
from serve_helpers import settings as serve_settings

KEY: dict[str, str] = {}


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fuzz")
    s, _ = serve_settings(tmp, budget=5.0, max_batch=50)  # keeps each example fast
    KEY["both"] = add_key(s.api_keys, "fuzzer", ["decide", "admin"])
    app = create_app(s)
    with TestClient(app):  # runs the lifespan: model loaded, budget store open
        yield schemathesis.openapi.from_asgi("/openapi.json", app)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=10, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_no_server_errors(case):
    response = case.call(headers={"X-API-Key": KEY["both"]})
    case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])
    assert response.status_code < 500, response.text
