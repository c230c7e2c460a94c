"""The API fuzzed from its own OpenAPI document: whatever a client sends (generated from the schemas:
valid requests, and requests that break them), the answer is never a server error. Every operation, as a buyer, a cooperative and the
bureau, against a small registry (a listing on sale), on the suite's database (PostgreSQL in the services
pass, where ids are 32-bit integers). Bounded: a fixed number of examples per operation and role."""

from __future__ import annotations

import itertools

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error

EXAMPLES = 15


@pytest.fixture
def tokens(factory):
    """A token per role, and something to find: a verified project with a batch and a listing."""
    seller = factory.user("seller")
    factory.listing(factory.batch(factory.project(seller=seller), tonnes="100"), tonnes="50")
    return {role: factory.token(factory.user(role) if role != "seller" else seller)
            for role in ("buyer", "seller", "bureau")}


def test_no_request_gets_a_server_error(app, tokens):
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20  # the whole API, not an empty document

    for operation, mode in itertools.product(operations, schemathesis.GenerationMode):
        @given(case=operation.as_strategy(mode))
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def fuzz(case):
            for token in tokens.values():
                case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, checks=[not_a_server_error])

        try:
            fuzz()
        except Unsatisfiable:  # nothing in this operation can be sent wrong (no parameters, no body)
            if mode is not schemathesis.GenerationMode.NEGATIVE:
                raise
