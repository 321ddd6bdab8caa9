"""The Python reference server of the cross-stack benchmark (BENCHMARKS.md, "Against the other
MCP stacks"): what a Python developer writes from the MCP Python SDK's documentation.

`MCPServer` (mcp 2.x's name for FastMCP) in its stateless streamable HTTP mode with JSON
responses, the SDK's bearer
authentication (`token_verifier` + `AuthSettings`, which adds its `RequireAuthMiddleware`)
with a PyJWT verifier (`PyJWKClient` for the keys; RS256 only, `typ` at+jwt, exact issuer,
audience = this resource), served by uvicorn, and one tool, `list_events`, answering what the
calendar example's `list_events` answers.

Environment: PORT (127.0.0.1 only), ISSUER, JWKS_URI, RESOURCE (the MCP endpoint URL, the
tokens' audience), AUTH (`on`, the default, or `off`: the same server without authentication).
The driver waits for the port. Started by `crossstack` (bench/src/bin).
"""

import json
import os
import sys

import jwt
from mcp.server.auth.provider import AccessToken, TokenVerifier
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer

PORT = int(os.environ.get("PORT", "8000"))
RESOURCE = os.environ.get("RESOURCE", f"http://127.0.0.1:{PORT}/mcp")
ISSUER = os.environ.get("ISSUER", "")
JWKS_URI = os.environ.get("JWKS_URI", f"{ISSUER}/jwks")
AUTH = os.environ.get("AUTH", "on") != "off"

# The calendar example's seeded event, as its `list_events` returns it.
EVENTS = [{"id": 1, "title": "Stand-up", "when": "every weekday at 09:30", "created_by": None}]


class JwtVerifier(TokenVerifier):
    """RFC 9068 access tokens checked with PyJWT, keys from the issuer's JWKS (cached)."""

    def __init__(self) -> None:
        self.jwks = jwt.PyJWKClient(JWKS_URI, cache_keys=True)

    async def verify_token(self, token: str) -> AccessToken | None:
        try:
            header = jwt.get_unverified_header(token)
            if str(header.get("typ", "")).lower() not in ("at+jwt", "application/at+jwt"):
                return None
            key = self.jwks.get_signing_key_from_jwt(token)
            claims = jwt.decode(
                token,
                key.key,
                algorithms=["RS256"],
                audience=RESOURCE,
                issuer=ISSUER,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.PyJWTError:
            return None
        scope = claims.get("scope", "")
        return AccessToken(
            token=token,
            client_id=str(claims.get("client_id", "")),
            scopes=scope.split() if isinstance(scope, str) else [],
            expires_at=int(claims["exp"]),
            resource=RESOURCE,
        )


def build() -> MCPServer:
    options = {"log_level": "WARNING"}
    if AUTH:
        options["token_verifier"] = JwtVerifier()
        options["auth"] = AuthSettings(
            issuer_url=ISSUER,
            resource_server_url=RESOURCE,
            required_scopes=["calendar:read"],
            # The verifier checks the audience itself (PyJWT's `audience=`).
            validate_token_resource=False,
        )
    server = MCPServer("calendar-py", **options)

    @server.tool(description="List the calendar's events", structured_output=False)
    def list_events() -> str:
        return json.dumps(EVENTS, separators=(",", ":"))

    return server


def main() -> None:
    # uvicorn, as `MCPServer.run` starts it: one process, its default event loop and HTTP parser.
    build().run(
        transport="streamable-http",
        host="127.0.0.1",
        port=PORT,
        stateless_http=True,
        json_response=True,
    )


if __name__ == "__main__":
    sys.exit(main())
