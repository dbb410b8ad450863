"""Response shapes of the API as attrs classes: the OpenAPI document's response schemas.

Each class mirrors what a route renders; with ``CORRAL_VALIDATE_RESPONSES`` (on in the test suite) every
answer is checked against them, so a change to the rendering that forgets its class fails the tests.
"""
