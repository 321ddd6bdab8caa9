// The official TypeScript MCP SDK as an OAuth client_credentials client of an mcp-oauth
// server (driven by tests/ts_client.rs).
//
//   node client_credentials.mjs            list the tools, call each one the token allows
//   node client_credentials.mjs step-up    a client limited to calendar:read is refused
//                                          delete_calendar (403 insufficient_scope); a client
//                                          with calendar:admin may call it
//
// Environment: MCP_URL (the MCP endpoint), CLIENT_ID and CLIENT_SECRET (a confidential client
// that may have every scope), SCOPE (optional, space-separated: the scopes to request; none:
// whatever the client may have), ISSUER (the authorization server the credentials belong to,
// the SDK's `expectedIssuer`).
//
// Only the MCP URL is configured: the SDK finds the protected-resource metadata, the
// authorization server and its token endpoint from the first 401. Prints one JSON summary
// line; exits non-zero on anything unexpected.

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport, StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ClientCredentialsProvider } from '@modelcontextprotocol/sdk/client/auth-extensions.js';
import { discoverOAuthServerInfo, registerClient } from '@modelcontextprotocol/sdk/client/auth.js';
import { describeError, env, fail, parseChallenge, printSummary, recordingFetch, toolJson, watchdog } from './common.mjs';

watchdog();

const MCP_URL = env('MCP_URL');
const CLIENT_ID = env('CLIENT_ID');
const CLIENT_SECRET = env('CLIENT_SECRET');
const ISSUER = env('ISSUER');
const SCOPE = process.env.SCOPE || undefined;
const AUTHORIZATION_META = 'rs.mcp-oauth/authorization';

/** A connected client using client credentials; `log` records its HTTP exchanges. */
async function connect({ clientId, clientSecret, scope, log }) {
  const provider = new ClientCredentialsProvider({
    clientId,
    clientSecret,
    scope,
    expectedIssuer: ISSUER,
    clientName: 'mcp-oauth interop (client_credentials)',
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

/** The token requests of a log: what the SDK asked the authorization server for. */
function tokenRequests(log) {
  return log.filter((e) => e.form?.grant_type).map((e) => ({ url: e.url, status: e.status, ...e.form }));
}

// Tools in a safe order (destructive last) with their arguments.
const PLAN = [
  ['list_events', () => ({})],
  ['create_event', () => ({ title: 'Interop', when: 'now' })],
  ['delete_event', (state) => ({ id: state.created })],
  ['whoami', () => ({})],
  ['delete_calendar', () => ({})],
];
// Listed, not called: public_holidays calls a downstream API that does not run here (the
// token-exchange tests cover it).
const LISTED_ONLY = ['public_holidays'];

async function basic() {
  const log = [];
  const { client, provider } = await connect({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, scope: SCOPE, log });
  const granted = grantedScopes(provider);
  const { tools } = await client.listTools();
  const state = {};
  const calls = [];
  const skipped = [];
  for (const [name, args] of PLAN) {
    const tool = tools.find((t) => t.name === name);
    if (!tool) throw new Error(`the server does not list ${name}`);
    const needed = tool._meta?.[AUTHORIZATION_META]?.scopes ?? [];
    if (!needed.every((s) => granted.includes(s))) {
      skipped.push({ tool: name, needs: needed });
      continue;
    }
    const result = toolJson(name, await client.callTool({ name, arguments: args(state) }));
    if (name === 'create_event') state.created = result.id;
    calls.push({ tool: name, needs: needed, result });
  }
  const unknown = tools
    .map((t) => t.name)
    .filter((n) => !PLAN.some(([p]) => p === n) && !LISTED_ONLY.includes(n));
  if (unknown.length) throw new Error(`tools this script does not know: ${unknown}`);
  await client.close();
  printSummary({
    flow: 'client_credentials',
    granted_scopes: granted,
    tools: tools.map((t) => ({ name: t.name, scopes: t._meta?.[AUTHORIZATION_META]?.scopes })),
    calls,
    skipped,
    token_requests: tokenRequests(log),
    http: log,
  });
}

async function stepUp() {
  // A client registered (RFC 7591) with calendar:read only, at the authorization server the
  // MCP server names in its metadata.
  const { authorizationServerUrl, authorizationServerMetadata } = await discoverOAuthServerInfo(MCP_URL);
  const registered = await registerClient(authorizationServerUrl, {
    metadata: authorizationServerMetadata,
    clientMetadata: {
      client_name: 'mcp-oauth interop (read-only)',
      redirect_uris: [],
      grant_types: ['client_credentials'],
      token_endpoint_auth_method: 'client_secret_basic',
      scope: 'calendar:read',
    },
  });

  const limitedLog = [];
  const limited = await connect({
    clientId: registered.client_id,
    clientSecret: registered.client_secret,
    scope: 'calendar:read',
    log: limitedLog,
  });
  const events = toolJson('list_events', await limited.client.callTool({ name: 'list_events', arguments: {} }));
  let refusal;
  try {
    const result = await limited.client.callTool({ name: 'delete_calendar', arguments: {} });
    throw new Error(`delete_calendar succeeded with calendar:read: ${JSON.stringify(result)}`);
  } catch (error) {
    if (!(error instanceof StreamableHTTPError) || error.code !== 403) {
      throw error;
    }
    refusal = describeError(error);
  }
  const refused = limitedLog.filter((e) => e.tool === 'delete_calendar' && e.status === 403);
  if (refused.length === 0) throw new Error('no 403 on delete_calendar was recorded');
  await limited.client.close();

  const adminLog = [];
  const admin = await connect({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, scope: 'calendar:admin', log: adminLog });
  const deleted = toolJson('delete_calendar', await admin.client.callTool({ name: 'delete_calendar', arguments: {} }));
  await admin.client.close();

  printSummary({
    flow: 'step-up',
    limited: {
      client_id: registered.client_id,
      registered_scope: registered.scope,
      granted_scopes: grantedScopes(limited.provider),
      list_events: events,
      error: refusal,
      challenges: refused.map((e) => parseChallenge(e.www_authenticate)),
      token_requests: tokenRequests(limitedLog),
      http: limitedLog,
    },
    admin: {
      granted_scopes: grantedScopes(admin.provider),
      delete_calendar: deleted,
      token_requests: tokenRequests(adminLog),
    },
  });
}

const mode = process.argv[2] ?? 'basic';
try {
  if (mode === 'basic') await basic();
  else if (mode === 'step-up') await stepUp();
  else fail(`unknown mode ${mode} (basic or step-up)`);
  process.exit(0);
} catch (error) {
  fail(`unexpected error in the ${mode} flow`, error);
}
