// The official TypeScript MCP SDK, as a client_credentials client pre-registered at an external
// authorization server (no dynamic registration), in a step-up scenario (driven by
// tests/oidc_provider.rs):
//
//   1. connect with a token narrowed to calendar:read: list_events works, delete_calendar is
//      refused with 403 insufficient_scope (the SDK surfaces a StreamableHTTPError);
//   2. connect again with a token for calendar:admin: delete_calendar succeeds.
//
// Environment: MCP_URL (the MCP endpoint), CLIENT_ID and CLIENT_SECRET (a confidential client
// that may have every scope), ISSUER (the authorization server the credentials belong to, the
// SDK's `expectedIssuer`).
//
// Only the MCP URL is configured: the SDK finds the protected-resource metadata, the
// authorization server and its token endpoint from the first 401. Prints one JSON summary
// line; exits non-zero on anything unexpected.

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport, StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ClientCredentialsProvider } from '@modelcontextprotocol/sdk/client/auth-extensions.js';
import { describeError, env, fail, parseChallenge, printSummary, recordingFetch, toolJson, watchdog } from './common.mjs';

watchdog();

const MCP_URL = env('MCP_URL');
const CLIENT_ID = env('CLIENT_ID');
const CLIENT_SECRET = env('CLIENT_SECRET');
const ISSUER = env('ISSUER');

/** A connected client whose tokens ask for `scope`; `log` records its HTTP exchanges. */
async function connect(scope, log) {
  const provider = new ClientCredentialsProvider({
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
    scope,
    expectedIssuer: ISSUER,
    clientName: `mcp-oauth interop (${scope})`,
  });
  const transport = new StreamableHTTPClientTransport(new URL(MCP_URL), {
    authProvider: provider,
    fetch: recordingFetch(log),
  });
  const client = new Client({ name: 'mcp-oauth-interop', version: '1.0.0' });
  await client.connect(transport);
  return { client, provider };
}

function grantedScopes(provider) {
  return (provider.tokens()?.scope ?? '').split(' ').filter(Boolean);
}

function tokenRequests(log) {
  return log.filter((e) => e.form?.grant_type).map((e) => ({ url: e.url, status: e.status, ...e.form }));
}

try {
  const narrowLog = [];
  const narrow = await connect('calendar:read', narrowLog);
  const events = toolJson('list_events', await narrow.client.callTool({ name: 'list_events', arguments: {} }));
  const whoami = toolJson('whoami', await narrow.client.callTool({ name: 'whoami', arguments: {} }));
  let refusal;
  try {
    const result = await narrow.client.callTool({ name: 'delete_calendar', arguments: {} });
    throw new Error(`delete_calendar succeeded with calendar:read: ${JSON.stringify(result)}`);
  } catch (error) {
    if (!(error instanceof StreamableHTTPError) || error.code !== 403) {
      throw error;
    }
    refusal = describeError(error);
  }
  const refused = narrowLog.filter((e) => e.tool === 'delete_calendar' && e.status === 403);
  if (refused.length === 0) throw new Error('no 403 on delete_calendar was recorded');
  await narrow.client.close();

  const broadLog = [];
  const broad = await connect('calendar:admin', broadLog);
  const deleted = toolJson('delete_calendar', await broad.client.callTool({ name: 'delete_calendar', arguments: {} }));
  const after = toolJson('list_events', await broad.client.callTool({ name: 'list_events', arguments: {} }));
  await broad.client.close();

  printSummary({
    flow: 'step-up (pre-registered client)',
    narrow: {
      granted_scopes: grantedScopes(narrow.provider),
      list_events: events,
      whoami,
      error: refusal,
      challenges: refused.map((e) => parseChallenge(e.www_authenticate)),
      token_requests: tokenRequests(narrowLog),
      http: narrowLog,
    },
    broad: {
      granted_scopes: grantedScopes(broad.provider),
      delete_calendar: deleted,
      list_events: after,
      token_requests: tokenRequests(broadLog),
      http: broadLog,
    },
  });
  process.exit(0);
} catch (error) {
  fail('unexpected error in the step-up flow', error);
}
