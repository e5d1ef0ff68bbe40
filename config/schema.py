"""The OpenAPI schema class: every operation also documents the refusals any view of its kind
gives, in the shapes core/exceptions.py answers them, so that a client (and schemathesis)
finds every status code the API can send in the schema.

- 400 when the operation reads input (a body or parameters); DRF's field errors
  (`{"<field>": ["..."]}`) are a 400 too, beside whatever 400 the view declares.
- 401 when the view authenticates (a missing, bad or expired credential).
- 403 when a permission beyond "signed in" decides, or a signed-in browser session's
  unsafe request lacks its CSRF token.
- 404 when the path names an object, and on paginated lists (a page past the end).
- 415 when it reads a body (sent in a media type it does not parse, or with none).
- 429 when a scoped throttle guards the view.

A view's own declaration of a code wins (except that 400 always admits field errors); a
refusal a view declares with a description only gets the `{detail, code}` body.
"""

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.plumbing import ResolvedComponent
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import SAFE_METHODS, AllowAny, IsAuthenticated
from rest_framework.throttling import ScopedRateThrottle

ERROR_SCHEMA = {
    "type": "object",
    "description": "A refusal: what went wrong, and a machine-readable code.",
    "properties": {"detail": {"type": "string"}, "code": {"type": "string"}},
    "required": ["detail", "code"],
}
FIELD_ERRORS_SCHEMA = {
    "type": "object",
    "description": "DRF's field errors: each field (or `non_field_errors`) with its messages.",
    "additionalProperties": {"anyOf": [{"type": "array", "items": {}}, {"type": "object"}]},
}
REFUSALS = {
    "400": "Bad input: a refusal with its code, or field errors.",
    "401": "No credentials, or bad or expired ones.",
    "403": "Your role (or this license) does not allow this.",
    "404": "Not found, or not yours.",
    "415": "The body's media type is not one the operation reads.",
    "429": "Rate limited; `Retry-After` says when to try again.",
}


class AutoSchema(SpectacularAutoSchema):
    def get_operation(self, *args, **kwargs):
        operation = super().get_operation(*args, **kwargs)
        if operation is not None:
            self._add_refusals(operation)
        return operation

    def _add_refusals(self, operation: dict) -> None:
        responses = operation["responses"]
        error = self._component("ErrorResponse", ERROR_SCHEMA)
        field_errors = self._component("FieldErrorsResponse", FIELD_ERRORS_SCHEMA)
        for code in self._refusal_codes(operation):
            if code not in responses:
                responses[code] = {"description": REFUSALS[code]}
        for code, response in responses.items():
            if code.startswith("4") and "content" not in response:
                description = response.get("description") or REFUSALS.get(code, "")
                response.update(self._get_response_for_code(error, code))
                response["description"] = description
            if code == "400":
                for media in responses[code].get("content", {}).values():
                    declared = media.get("schema", error)
                    media["schema"] = {"anyOf": [declared, field_errors]}
        operation["responses"] = dict(sorted(responses.items()))

    def _refusal_codes(self, operation: dict) -> list[str]:
        view = self.view
        codes = []
        if operation.get("requestBody") or operation.get("parameters"):
            codes.append("400")
        authenticators = list(getattr(view, "authentication_classes", ()))
        if authenticators:
            codes.append("401")
        permissions = [type(permission) for permission in view.get_permissions()]
        decides = any(p not in (AllowAny, IsAuthenticated) for p in permissions)
        csrf = self.method not in SAFE_METHODS and SessionAuthentication in authenticators
        if decides or (csrf and permissions != [AllowAny]):
            codes.append("403")
        if "{" in self.path or (self._is_list_view() and self._get_paginator()):
            codes.append("404")
        if operation.get("requestBody"):
            codes.append("415")
        throttled = any(
            isinstance(c, type) and issubclass(c, ScopedRateThrottle)
            for c in getattr(view, "throttle_classes", ())
        )
        if throttled and getattr(view, "throttle_scope", None):
            codes.append("429")
        return codes

    def _component(self, name: str, schema: dict) -> dict:
        component = ResolvedComponent(
            name=name, type=ResolvedComponent.SCHEMA, object=name, schema=schema
        )
        self.registry.register_on_missing(component)
        return component.ref
