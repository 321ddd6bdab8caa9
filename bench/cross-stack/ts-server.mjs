// The TypeScript reference server of the cross-stack benchmark (BENCHMARKS.md, "Against the
// other MCP stacks"): what a TypeScript developer writes from the MCP TypeScript SDK's
// documentation. Express, the SDK's stateless streamable HTTP transport (a server and a
// transport per request, JSON responses), the SDK's `requireBearerAuth` middleware with a
// `jose` verifier (`createRemoteJWKSet` + `jwtVerify`: RS256 only, `typ` at+jwt, exact issuer,
// audience = this resource), and one tool, `list_events`, answering what the calendar
// example's `list_events` answers.
//
// Environment: PORT (127.0.0.1 only), ISSUER, JWKS_URI, RESOURCE (the MCP endpoint URL, the
// tokens' audience), AUTH (`on`, the default, or `off`: the same server without the
// middleware). Prints `ready` once listening. Started by `crossstack` (bench/src/bin).

import { createRemoteJWKSet, jwtVerify } from 'jose';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { createMcpExpressApp } from '@modelcontextprotocol/sdk/server/express.js';
import { requireBearerAuth } from '@modelcontextprotocol/sdk/server/auth/middleware/bearerAuth.js';
import { InvalidTokenError } from '@modelcontextprotocol/sdk/server/auth/errors.js';

const PORT = Number(process.env.PORT ?? 3000);
const RESOURCE = process.env.RESOURCE ?? `http://127.0.0.1:${PORT}/mcp`;
const ISSUER = process.env.ISSUER;
const JWKS_URI = process.env.JWKS_URI ?? `${ISSUER}/jwks`;
const AUTH = (process.env.AUTH ?? 'on') !== 'off';

// The calendar example's seeded event, as its `list_events` returns it.
const events = [{ id: 1, title: 'Stand-up', when: 'every weekday at 09:30', created_by: null }];

function buildServer() {
  const server = new McpServer({ name: 'calendar-ts', version: '1.0.0' });
  server.registerTool(
    'list_events',
    { description: "List the calendar's events" },
    async () => ({ content: [{ type: 'text', text: JSON.stringify(events) }] }),
  );
  return server;
}

// Loopback: the SDK's helper turns on its Host-header check (DNS rebinding protection).
const app = createMcpExpressApp({ host: '127.0.0.1' });
const metadataPath = '/.well-known/oauth-protected-resource/mcp';
const handlers = [];

if (AUTH) {
  if (!ISSUER) throw new Error('ISSUER is required with AUTH=on');
  const jwks = createRemoteJWKSet(new URL(JWKS_URI));
  const verifier = {
    async verifyAccessToken(token) {
      let payload;
      try {
        ({ payload } = await jwtVerify(token, jwks, {
          issuer: ISSUER,
          audience: RESOURCE,
          typ: 'at+jwt',
          algorithms: ['RS256'],
          requiredClaims: ['exp', 'sub'],
        }));
      } catch {
        throw new InvalidTokenError('Invalid access token');
      }
      return {
        token,
        clientId: String(payload.client_id ?? ''),
        scopes: typeof payload.scope === 'string' ? payload.scope.split(' ').filter(Boolean) : [],
        expiresAt: payload.exp,
        resource: new URL(RESOURCE),
        extra: { sub: payload.sub },
      };
    },
  };
  const resourceMetadataUrl = `${new URL(RESOURCE).origin}${metadataPath}`;
  app.get(metadataPath, (_req, res) => {
    res.json({
      resource: RESOURCE,
      authorization_servers: [ISSUER],
      scopes_supported: ['calendar:read', 'calendar:write', 'calendar:admin'],
      bearer_methods_supported: ['header'],
    });
  });
  handlers.push(requireBearerAuth({ verifier, requiredScopes: ['calendar:read'], resourceMetadataUrl }));
}

// Stateless: a new server and transport for each request, closed with the response.
handlers.push(async (req, res) => {
  const server = buildServer();
  const transport = new StreamableHTTPServerTransport({
    sessionIdGenerator: undefined,
    enableJsonResponse: true,
  });
  res.on('close', () => {
    transport.close();
    server.close();
  });
  try {
    await server.connect(transport);
    await transport.handleRequest(req, res, req.body);
  } catch (error) {
    if (!res.headersSent) {
      res.status(500).json({
        jsonrpc: '2.0',
        error: { code: -32603, message: 'Internal server error' },
        id: null,
      });
    }
  }
});
app.post('/mcp', ...handlers);

app.listen(PORT, '127.0.0.1', (error) => {
  if (error) throw error;
  console.log('ready');
});
