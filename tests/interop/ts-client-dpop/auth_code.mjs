// The official TypeScript MCP client (@modelcontextprotocol/client, v2) as a DPoP
// authorization-code + PKCE client of an mcp-oauth server that requires DPoP, whose
// authorization server is mcp-oauth's dev server (driven by tests/ts_client_dpop.rs).
//
//   node auth_code.mjs            the SDK registers itself (RFC 7591, a public client), runs
//                                 the authorization, exchanges the code with a DPoP proof,
//                                 calls tools, then refreshes its DPoP-bound refresh token
//   node auth_code.mjs step-up    a public client registered beforehand for every scope;
//                                 create_event answers 403 insufficient_scope, the SDK sends
//                                 the user to authorize the wider scope, the script completes
//                                 that authorization and the retried call succeeds
//
// The OAuthClientProvider below keeps everything in memory and implements `dpop()` (one
// DpopSession, an ES256 key). Its "browser" is a fetch that does not follow redirects: the
// dev server approves loopback redirect URIs at once and answers 302 with the code, which is
// read from the Location header and handed to `transport.finishAuth`.
//
// Environment: MCP_URL (the MCP endpoint). Prints one JSON summary line; exits non-zero on
// anything unexpected.

import { randomUUID } from 'node:crypto';
import {
  Client,
  DpopSession,
  StreamableHTTPClientTransport,
  UnauthorizedError,
  auth,
  discoverOAuthServerInfo,
  registerClient,
} from '@modelcontextprotocol/client';
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
// Loopback redirect URIs match with any port (RFC 8252 §7.3); nothing needs to listen here.
const REDIRECT_URL = 'http://127.0.0.1:8977/callback';

/** An in-memory OAuthClientProvider for a native app with a loopback redirect, using DPoP. */
class InMemoryDpopProvider {
  constructor(session) {
    this.session = session;
    this.authorizations = [];
    this.callbacks = [];
  }

  get redirectUrl() {
    return REDIRECT_URL;
  }

  get clientMetadata() {
    return {
      client_name: 'mcp-oauth interop (authorization code, DPoP)',
      redirect_uris: [REDIRECT_URL],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }

  dpop() {
    return this.session;
  }

  state() {
    this._state = randomUUID();
    return this._state;
  }

  clientInformation() {
    return this._client;
  }

  saveClientInformation(information) {
    this._client = information;
  }

  tokens() {
    return this._tokens;
  }

  saveTokens(tokens) {
    this._tokens = tokens;
  }

  saveCodeVerifier(verifier) {
    this._verifier = verifier;
  }

  codeVerifier() {
    if (!this._verifier) throw new Error('no code verifier saved');
    return this._verifier;
  }

  discoveryState() {
    return this._discovery;
  }

  saveDiscoveryState(state) {
    this._discovery = state;
  }

  /** The user agent: follow the authorization URL, keep the redirect's parameters. */
  async redirectToAuthorization(url) {
    const request = Object.fromEntries(url.searchParams.entries());
    delete request.code_challenge;
    const response = await fetch(url, { redirect: 'manual' });
    const location = response.headers.get('location');
    if (response.status !== 302 || !location) {
      throw new Error(`the authorization endpoint answered ${response.status}: ${await response.text()}`);
    }
    const redirect = new URL(location);
    if (`${redirect.origin}${redirect.pathname}` !== REDIRECT_URL) {
      throw new Error(`redirected to ${location}, not to ${REDIRECT_URL}`);
    }
    const error = redirect.searchParams.get('error');
    if (error) {
      throw new Error(`authorization refused: ${error} ${redirect.searchParams.get('error_description') ?? ''}`);
    }
    if (redirect.searchParams.get('state') !== this._state) {
      throw new Error(`state mismatch in ${location}`);
    }
    if (!redirect.searchParams.get('code')) throw new Error(`no code in ${location}`);
    this.callbacks.push(redirect.searchParams);
    this.authorizations.push({
      request: { ...request, has_code_challenge: url.searchParams.has('code_challenge') },
      endpoint: `${url.origin}${url.pathname}`,
      status: response.status,
      iss: redirect.searchParams.get('iss'),
    });
  }

  /** The parameters of the latest authorization response, once. */
  takeCallback() {
    const callback = this.callbacks.shift();
    if (!callback) throw new Error('the SDK did not go through the authorization endpoint');
    return callback;
  }
}

const log = [];
const session = await DpopSession.create();
const provider = new InMemoryDpopProvider(session);
const client = new Client({ name: 'mcp-oauth-interop-dpop', version: '1.0.0' });
const newTransport = () =>
  new StreamableHTTPClientTransport(new URL(MCP_URL), { authProvider: provider, fetch: recordingFetch(log) });

/** Connects, going through the authorization endpoint first (401 → discovery → authorize). */
async function authorizeAndConnect() {
  const first = newTransport();
  let firstError;
  try {
    await client.connect(first);
    throw new Error('connected without authorization');
  } catch (error) {
    if (!(error instanceof UnauthorizedError)) throw error;
    firstError = describeError(error);
  }
  await first.finishAuth(provider.takeCallback());
  const transport = newTransport();
  await client.connect(transport);
  return { firstError, transport };
}

async function basic() {
  const { firstError } = await authorizeAndConnect();
  const afterCode = describeTokens(provider.tokens());
  const { tools } = await client.listTools();
  const whoami = toolJson('whoami', await client.callTool({ name: 'whoami', arguments: {} }));

  // The refresh path of the SDK's auth(): a token request with the refresh token and a proof
  // by the same key; the new access token is bound to it too.
  const refreshed = await auth(provider, { serverUrl: new URL(MCP_URL), fetchFn: recordingFetch(log) });
  const afterRefresh = describeTokens(provider.tokens());
  const whoamiAgain = toolJson('whoami', await client.callTool({ name: 'whoami', arguments: {} }));
  await client.close();

  printSummary({
    flow: 'authorization_code',
    session: { jkt: session.thumbprint, alg: session.alg },
    first_connect_error: firstError,
    registered_client: {
      client_id: provider.clientInformation()?.client_id,
      has_secret: Boolean(provider.clientInformation()?.client_secret),
      token_endpoint_auth_method: provider.clientInformation()?.token_endpoint_auth_method,
    },
    authorizations: provider.authorizations,
    tokens: afterCode,
    refresh: { result: refreshed, tokens: afterRefresh },
    tools: tools.map((t) => t.name),
    whoami,
    whoami_after_refresh: whoamiAgain,
    token_requests: tokenRequests(log),
    http: log,
  });
}

async function stepUp() {
  // Registered beforehand for every scope, so that the wider authorization can be granted
  // (the dev server holds a dynamically registered client to the scope it registered with,
  // and the SDK registers with the scope of the first challenge).
  const { authorizationServerUrl, authorizationServerMetadata } = await discoverOAuthServerInfo(MCP_URL);
  const registered = await registerClient(authorizationServerUrl, {
    metadata: authorizationServerMetadata,
    clientMetadata: {
      ...provider.clientMetadata,
      scope: authorizationServerMetadata.scopes_supported.join(' '),
    },
  });
  provider.saveClientInformation({ ...registered, issuer: authorizationServerMetadata.issuer });

  const { transport } = await authorizeAndConnect();
  const before = describeTokens(provider.tokens());
  let stepUpError;
  let created;
  try {
    created = toolJson(
      'create_event',
      await client.callTool({ name: 'create_event', arguments: { title: 'Interop (DPoP step-up)', when: 'now' } })
    );
  } catch (error) {
    // The 403 sent the user to authorize the wider scope: finish that authorization, retry.
    if (!(error instanceof UnauthorizedError)) throw error;
    stepUpError = describeError(error);
    await transport.finishAuth(provider.takeCallback());
    created = toolJson(
      'create_event',
      await client.callTool({ name: 'create_event', arguments: { title: 'Interop (DPoP step-up)', when: 'now' } })
    );
  }
  const whoami = toolJson('whoami', await client.callTool({ name: 'whoami', arguments: {} }));
  await client.close();
  const refused = log.filter((e) => e.tool === 'create_event' && e.status === 403);
  printSummary({
    flow: 'authorization_code step-up',
    session: { jkt: session.thumbprint, alg: session.alg },
    client_id: registered.client_id,
    authorizations: provider.authorizations,
    before,
    after: describeTokens(provider.tokens()),
    step_up_error: stepUpError,
    create_event: created,
    whoami,
    challenges: refused.map((e) => parseChallenge(e.www_authenticate)),
    token_requests: tokenRequests(log),
    http: log,
  });
}

const mode = process.argv[2] ?? 'basic';
try {
  if (mode === 'basic') await basic();
  else if (mode === 'step-up') await stepUp();
  else fail(`unknown mode ${mode} (basic or step-up)`);
  process.exit(0);
} catch (error) {
  fail(`unexpected error in the ${mode} authorization-code flow`, error);
}
