// The official TypeScript MCP client (@modelcontextprotocol/client, v2) as a DPoP
// client_credentials client of an mcp-oauth server that requires DPoP (driven by
// tests/ts_client_dpop.rs).
//
//   node client_credentials.mjs            DPoP: list the tools, call each one (the SDK asks for
//                                          the scope of the 401 challenge first, SEP-835, and
//                                          widens it on each 403 insufficient_scope)
//   node client_credentials.mjs step-up    DPoP: a token for calendar:read only; delete_calendar
//                                          answers 403 insufficient_scope, the client asks for a
//                                          token with the scope the challenge names, and succeeds
//   node client_credentials.mjs bearer     no DPoP: the client gets a bearer token, which the
//                                          resource refuses
//
// Environment: MCP_URL (the MCP endpoint), CLIENT_ID and CLIENT_SECRET (a confidential client
// that may have every scope), ISSUER (its authorization server, the SDK's `expectedIssuer`).
//
// The provider is the package's ClientCredentialsProvider with the `dpop()` hook of
// OAuthClientProvider returning one DpopSession (an ES256 key): the SDK then sends a proof
// with each token request and presents the DPoP-bound token with `Authorization: DPoP` and a
// proof per request. Prints one JSON summary line; exits non-zero on anything unexpected.

import { Client, ClientCredentialsProvider, DpopSession, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import {
  describeError,
  describeTokens,
  env,
  fail,
  parseChallenge,
  printSummary,
  recordingFetch,
  tokenRequests,
  toolJson,
  watchdog,
} from './common.mjs';

watchdog();

const MCP_URL = env('MCP_URL');
const CLIENT_ID = env('CLIENT_ID');
const CLIENT_SECRET = env('CLIENT_SECRET');
const ISSUER = env('ISSUER');
const AUTHORIZATION_META = 'rs.mcp-oauth/authorization';

/** ClientCredentialsProvider with the `dpop()` hook: every token it gets is bound to `session`. */
class DpopClientCredentialsProvider extends ClientCredentialsProvider {
  constructor(options, session) {
    super(options);
    this.session = session;
  }

  dpop() {
    return this.session;
  }
}

/** A client and its provider; `session` (a DpopSession) or none for a bearer-only client. */
function newClient({ scope, session, log }) {
  const options = {
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
    scope,
    expectedIssuer: ISSUER,
    clientName: 'mcp-oauth interop (client_credentials, DPoP)',
  };
  const provider = session
    ? new DpopClientCredentialsProvider(options, session)
    : new ClientCredentialsProvider(options);
  const transport = new StreamableHTTPClientTransport(new URL(MCP_URL), {
    authProvider: provider,
    fetch: recordingFetch(log),
  });
  const client = new Client({ name: 'mcp-oauth-interop-dpop', version: '1.0.0' });
  return { client, provider, transport };
}

/** A connected client (see `newClient`). */
async function connect(options) {
  const { client, provider, transport } = newClient(options);
  await client.connect(transport);
  return { client, provider };
}

// Tools in a safe order (destructive last) with their arguments.
const PLAN = [
  ['list_events', () => ({})],
  ['create_event', () => ({ title: 'Interop (DPoP)', when: 'now' })],
  ['delete_event', (state) => ({ id: state.created })],
  ['whoami', () => ({})],
  ['delete_calendar', () => ({})],
];

async function basic() {
  const log = [];
  const session = await DpopSession.create();
  const { client, provider } = await connect({ scope: undefined, session, log });
  const { tools } = await client.listTools();
  const state = {};
  const calls = [];
  for (const [name, args] of PLAN) {
    if (!tools.some((t) => t.name === name)) throw new Error(`the server does not list ${name}`);
    const result = toolJson(name, await client.callTool({ name, arguments: args(state) }));
    if (name === 'create_event') state.created = result.id;
    calls.push({ tool: name, result });
  }
  await client.close();
  printSummary({
    flow: 'client_credentials',
    session: { jkt: session.thumbprint, alg: session.alg },
    tokens: describeTokens(provider.tokens()),
    tools: tools.map((t) => ({ name: t.name, scopes: t._meta?.[AUTHORIZATION_META]?.scopes })),
    calls,
    token_requests: tokenRequests(log),
    http: log,
  });
}

async function stepUp() {
  const log = [];
  const session = await DpopSession.create();
  const { client, provider } = await connect({ scope: 'calendar:read', session, log });
  const before = describeTokens(provider.tokens());
  const events = toolJson('list_events', await client.callTool({ name: 'list_events', arguments: {} }));
  // calendar:admin is missing: 403 insufficient_scope, which the transport follows (SEP-2350:
  // a token for the union of what it had and what the challenge names), then retries.
  const deleted = toolJson('delete_calendar', await client.callTool({ name: 'delete_calendar', arguments: {} }));
  await client.close();
  const refused = log.filter((e) => e.tool === 'delete_calendar' && e.status === 403);
  if (refused.length === 0) throw new Error('no 403 on delete_calendar was recorded');
  printSummary({
    flow: 'step-up',
    session: { jkt: session.thumbprint, alg: session.alg },
    before,
    after: describeTokens(provider.tokens()),
    list_events: events,
    delete_calendar: deleted,
    challenges: refused.map((e) => parseChallenge(e.www_authenticate)),
    token_requests: tokenRequests(log),
    http: log,
  });
}

async function bearer() {
  const log = [];
  const { client, provider, transport } = newClient({ scope: undefined, session: undefined, log });
  let outcome;
  try {
    await client.connect(transport);
    const result = await client.callTool({ name: 'whoami', arguments: {} });
    outcome = { outcome: 'succeeded', result };
  } catch (error) {
    outcome = { outcome: 'refused', error: describeError(error) };
  }
  printSummary({
    flow: 'bearer',
    ...outcome,
    tokens: describeTokens(provider.tokens()),
    token_requests: tokenRequests(log),
    http: log,
  });
}

const mode = process.argv[2] ?? 'basic';
try {
  if (mode === 'basic') await basic();
  else if (mode === 'step-up') await stepUp();
  else if (mode === 'bearer') await bearer();
  else fail(`unknown mode ${mode} (basic, step-up or bearer)`);
  process.exit(0);
} catch (error) {
  fail(`unexpected error in the ${mode} flow`, error);
}
