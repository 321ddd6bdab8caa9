// The official TypeScript MCP SDK as an authorization-code + PKCE client of an mcp-oauth
// server whose authorization server is mcp-oauth's dev server (driven by tests/ts_client.rs).
//
// The OAuthClientProvider below keeps everything in memory and registers itself dynamically
// (RFC 7591) as a public client, as real MCP clients do. Its "browser" is a fetch that does
// not follow redirects: the dev server approves every authorization request and answers 302
// to the redirect URI with the code, which nothing listens on; the code is read from the
// Location header and handed to `transport.finishAuth`.
//
// Environment: MCP_URL (the MCP endpoint). Prints one JSON summary line; exits non-zero on
// anything unexpected.

import { randomUUID } from 'node:crypto';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport, StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { describeError, env, fail, printSummary, recordingFetch, toolJson, watchdog } from './common.mjs';

watchdog();

const MCP_URL = env('MCP_URL');
// Loopback redirect URIs match with any port (RFC 8252 §7.3); nothing needs to listen here.
const REDIRECT_URL = 'http://127.0.0.1:8976/callback';

/** An in-memory OAuthClientProvider for a native app using a loopback redirect. */
class InMemoryProvider {
  constructor() {
    this.authorizations = [];
  }

  get redirectUrl() {
    return REDIRECT_URL;
  }

  get clientMetadata() {
    return {
      client_name: 'mcp-oauth interop (authorization code)',
      redirect_uris: [REDIRECT_URL],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
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

  /** The user agent: follow the authorization URL, read the code from the redirect. */
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
    const code = redirect.searchParams.get('code');
    if (!code) throw new Error(`no code in ${location}`);
    this.code = code;
    this.authorizations.push({
      request: { ...request, has_code_challenge: url.searchParams.has('code_challenge') },
      endpoint: `${url.origin}${url.pathname}`,
      status: response.status,
      // RFC 9207: the authorization response names its issuer.
      iss: redirect.searchParams.get('iss'),
    });
  }
}

const log = [];
const provider = new InMemoryProvider();
const client = new Client({ name: 'mcp-oauth-interop', version: '1.0.0' });
const newTransport = () =>
  new StreamableHTTPClientTransport(new URL(MCP_URL), { authProvider: provider, fetch: recordingFetch(log) });

try {
  // 1. Unauthenticated: 401 → discovery → registration → authorization (redirect).
  const first = newTransport();
  let firstError;
  try {
    await client.connect(first);
    throw new Error('connected without authorization');
  } catch (error) {
    if (!(error instanceof UnauthorizedError)) throw error;
    firstError = describeError(error);
  }
  if (!provider.code) throw new Error('the SDK did not go through the authorization endpoint');

  // 2. The code for tokens (PKCE verifier, resource indicator), then connect again.
  await first.finishAuth(provider.code);
  await client.connect(newTransport());
  const { tools } = await client.listTools();
  const whoami = toolJson('whoami', await client.callTool({ name: 'whoami', arguments: {} }));

  // 3. A tool the granted scope does not cover: what the SDK does with the 403 step-up
  //    challenge when it holds a refresh token.
  let stepUp;
  try {
    const result = await client.callTool({ name: 'create_event', arguments: { title: 'Interop', when: 'now' } });
    stepUp = { outcome: 'succeeded', result: toolJson('create_event', result) };
  } catch (error) {
    if (!(error instanceof StreamableHTTPError || error instanceof UnauthorizedError)) throw error;
    stepUp = { outcome: 'refused', error: describeError(error) };
  }
  await client.close();

  const tokens = provider.tokens();
  printSummary({
    flow: 'authorization_code',
    first_connect_error: firstError,
    registered_client: {
      client_id: provider.clientInformation()?.client_id,
      has_secret: Boolean(provider.clientInformation()?.client_secret),
      scope: provider.clientInformation()?.scope,
      token_endpoint_auth_method: provider.clientInformation()?.token_endpoint_auth_method,
    },
    authorizations: provider.authorizations,
    tokens: {
      token_type: tokens?.token_type,
      scope: tokens?.scope,
      has_refresh_token: Boolean(tokens?.refresh_token),
    },
    tools: tools.map((t) => t.name),
    whoami,
    step_up: {
      tool: 'create_event',
      ...stepUp,
      challenges: log.filter((e) => e.tool === 'create_event').map((e) => e.www_authenticate ?? null),
    },
    http: log,
  });
  process.exit(0);
} catch (error) {
  fail('unexpected error in the authorization-code flow', error);
}
