// The official TypeScript MCP client (@modelcontextprotocol/client, v2) as an authorization
// code + PKCE client identified by a Client ID Metadata Document (CIMD, SEP-991): its
// `client_id` is the https URL of a JSON document describing it, which the authorization
// server fetches; there is no registration. Driven by tests/ts_client_cimd.rs, which serves
// the document over https (from a test root CA the dev server is told to trust) and runs the
// calendar example against mcp-oauth's dev authorization server.
//
//   node cimd_auth_code.mjs              connect → 401 → discovery → authorization with
//                                        client_id = CLIENT_METADATA_URL → the consent page,
//                                        answered "Allow" → redirect with code and iss; a
//                                        callback whose iss was changed is refused by the SDK
//                                        before the code is redeemed, the real one is
//                                        exchanged → tools/list and tools/call with the token
//   node cimd_auth_code.mjs refused      the same start, for a document that does not list
//                                        REDIRECT_URL: the authorization must fail, and the
//                                        summary says how (no code, no token request)
//
// The OAuthClientProvider below keeps everything in memory; its `clientMetadataUrl` is
// CLIENT_METADATA_URL, and it holds no client information, so the SDK uses the URL as the
// client id once the authorization server's metadata says
// `client_id_metadata_document_supported`. Its "browser" is a fetch that follows no
// redirects: it reads the authorization endpoint's answer (a consent page, whose form it
// posts with "Allow", or a 302) and keeps the callback's parameters for `finishAuth`.
//
// Environment: MCP_URL (the MCP endpoint), CLIENT_METADATA_URL (the https URL of the
// client's metadata document), REDIRECT_URL (the loopback callback the document lists, or
// for `refused` the one it does not list; nothing needs to listen there). Prints one JSON
// summary line; exits non-zero on anything unexpected.

import { randomUUID } from 'node:crypto';
import {
  Client,
  IssuerMismatchError,
  StreamableHTTPClientTransport,
  UnauthorizedError,
  validateClientMetadataUrl,
} from '@modelcontextprotocol/client';
import {
  describeError,
  describeTokens,
  env,
  fail,
  printSummary,
  recordingFetch,
  tokenRequests,
  toolJson,
  watchdog,
} from './common.mjs';

watchdog();

const MCP_URL = env('MCP_URL');
const CLIENT_METADATA_URL = env('CLIENT_METADATA_URL');
const REDIRECT_URL = env('REDIRECT_URL');

/** The text of an HTML page, tags dropped and whitespace collapsed, at most 600 characters. */
function pageText(html) {
  return unescapeHtml(html.replace(/<(style|script)[^>]*>[\s\S]*?<\/\1>/gi, ' ').replace(/<[^>]+>/g, ' '))
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, 600);
}

function unescapeHtml(text) {
  return text
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&#x27;/g, "'")
    .replace(/&amp;/g, '&');
}

/** The attributes of one HTML start tag (`<input type="hidden" name="a" value="b">`). */
function attributes(tag) {
  const found = {};
  for (const match of tag.matchAll(/([A-Za-z_:][-A-Za-z0-9_:.]*)\s*=\s*("([^"]*)"|'([^']*)'|([^\s"'>]+))/g)) {
    found[match[1].toLowerCase()] = unescapeHtml(match[3] ?? match[4] ?? match[5] ?? '');
  }
  return found;
}

/**
 * What a user's browser would submit when the user presses the page's "Allow" button: the
 * form (POST) holding that button, its action resolved against the page's URL, its hidden
 * fields, and the button's own name=value.
 */
function allowSubmission(html, pageUrl) {
  for (const form of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const formAttributes = attributes(form[1]);
    if ((formAttributes.method ?? 'get').toLowerCase() !== 'post') continue;
    const allow = [...form[2].matchAll(/<button\b([^>]*)>([\s\S]*?)<\/button>/gi)].find(
      (button) => pageText(button[2]).toLowerCase() === 'allow'
    );
    if (!allow) continue;
    const fields = new URLSearchParams();
    for (const input of form[2].matchAll(/<input\b([^>]*)>/gi)) {
      const input_ = attributes(input[1]);
      if ((input_.type ?? 'text').toLowerCase() === 'hidden' && input_.name) {
        fields.append(input_.name, input_.value ?? '');
      }
    }
    const button = attributes(allow[1]);
    if (button.name) fields.append(button.name, button.value ?? '');
    return { action: new URL(formAttributes.action ?? pageUrl.href, pageUrl).href, fields };
  }
  return undefined;
}

/** An in-memory OAuthClientProvider whose client id is the URL of its metadata document. */
class CimdProvider {
  constructor() {
    validateClientMetadataUrl(CLIENT_METADATA_URL); // throws unless https with a path
    this.authorizations = [];
    this.callbacks = [];
  }

  get clientMetadataUrl() {
    return CLIENT_METADATA_URL;
  }

  get redirectUrl() {
    return REDIRECT_URL;
  }

  /** What the SDK would register were CIMD not supported (the test asserts it never does). */
  get clientMetadata() {
    return {
      client_name: 'mcp-oauth interop (CIMD)',
      redirect_uris: [REDIRECT_URL],
      grant_types: ['authorization_code'],
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

  discoveryState() {
    return this._discovery;
  }

  saveDiscoveryState(state) {
    this._discovery = state;
  }

  /**
   * The user agent: open the authorization URL; on a consent page press "Allow"; keep the
   * redirect's parameters. Every step is recorded in `authorizations`, failures included.
   */
  async redirectToAuthorization(url) {
    const request = Object.fromEntries(url.searchParams.entries());
    delete request.code_challenge;
    const entry = {
      endpoint: `${url.origin}${url.pathname}`,
      request: { ...request, has_code_challenge: url.searchParams.has('code_challenge') },
    };
    this.authorizations.push(entry);
    let response = await fetch(url, { redirect: 'manual' });
    entry.status = response.status;
    if (response.status === 200) {
      const html = await response.text();
      const submission = allowSubmission(html, url);
      entry.consent = {
        content_type: response.headers.get('content-type'),
        text: pageText(html),
        has_allow: submission !== undefined,
      };
      if (!submission) throw new Error(`a page without an "Allow" form: ${entry.consent.text}`);
      entry.consent.action = submission.action;
      entry.consent.fields = [...submission.fields.keys()];
      // As a browser posts the form: a form body, the page's origin.
      response = await fetch(submission.action, {
        method: 'POST',
        redirect: 'manual',
        headers: { 'content-type': 'application/x-www-form-urlencoded', origin: url.origin },
        body: submission.fields,
      });
      entry.consent.status = response.status;
    }
    const location = response.headers.get('location');
    if (response.status !== 302 || !location) {
      const text = pageText(await response.text());
      entry.refusal = { status: response.status, text };
      throw new Error(`the authorization endpoint answered ${response.status}: ${text}`);
    }
    const redirect = new URL(location);
    entry.redirect = {
      to: `${redirect.origin}${redirect.pathname}`,
      has_code: redirect.searchParams.has('code'),
      state_matches: redirect.searchParams.get('state') === this._state,
      iss: redirect.searchParams.get('iss'),
      error: redirect.searchParams.get('error'),
      error_description: redirect.searchParams.get('error_description'),
    };
    if (`${redirect.origin}${redirect.pathname}` !== REDIRECT_URL) {
      throw new Error(`redirected to ${location}, not to ${REDIRECT_URL}`);
    }
    if (redirect.searchParams.get('error')) {
      throw new Error(`authorization refused: ${redirect.searchParams.get('error')} ${entry.redirect.error_description ?? ''}`);
    }
    if (!entry.redirect.state_matches) throw new Error(`state mismatch in ${location}`);
    if (!entry.redirect.has_code) throw new Error(`no code in ${location}`);
    this.callbacks.push(redirect.searchParams);
  }

  /** The parameters of the latest authorization response, once. */
  takeCallback() {
    const callback = this.callbacks.shift();
    if (!callback) throw new Error('the SDK did not go through the authorization endpoint');
    return callback;
  }
}

const log = [];
const provider = new CimdProvider();
const client = new Client({ name: 'mcp-oauth-interop-cimd', version: '1.0.0' });
const newTransport = () =>
  new StreamableHTTPClientTransport(new URL(MCP_URL), { authProvider: provider, fetch: recordingFetch(log) });

/** The first connection: it must end in the authorization endpoint (401 → discovery → authorize). */
async function firstConnect() {
  try {
    await client.connect(newTransport());
  } catch (error) {
    return error;
  }
  throw new Error('connected without authorization');
}

/** What the log says about registration and the client id the SDK used. */
function common() {
  return {
    client_information: {
      client_id: provider.clientInformation()?.client_id,
      has_secret: Boolean(provider.clientInformation()?.client_secret),
    },
    registration_requests: log.filter((e) => new URL(e.url).pathname.endsWith('/register')).length,
    authorizations: provider.authorizations,
    token_requests: tokenRequests(log),
    http: log,
  };
}

async function basic() {
  const first = await firstConnect();
  if (!(first instanceof UnauthorizedError)) throw first;
  const callback = provider.takeCallback();

  // RFC 9207: a callback whose `iss` names another server is refused before the code is
  // redeemed (the SDK compares it with the discovered issuer)...
  const forged = new URLSearchParams(callback);
  forged.set('iss', `${callback.get('iss')}/elsewhere`);
  const tokenRequestsBefore = tokenRequests(log).length;
  let forgedIss;
  try {
    await newTransport().finishAuth(forged);
    throw new Error('the SDK redeemed a code whose callback named another issuer');
  } catch (error) {
    if (!(error instanceof IssuerMismatchError)) throw error;
    forgedIss = { error: describeError(error), token_requests: tokenRequests(log).length - tokenRequestsBefore };
  }

  // ...and the real one is exchanged for a token.
  await newTransport().finishAuth(callback);
  await client.connect(newTransport());
  const { tools } = await client.listTools();
  const whoami = toolJson('whoami', await client.callTool({ name: 'whoami', arguments: {} }));
  const events = toolJson('list_events', await client.callTool({ name: 'list_events', arguments: {} }));
  await client.close();

  printSummary({
    flow: 'authorization_code with a client id metadata document',
    outcome: 'authorized',
    first_connect_error: describeError(first),
    forged_iss: forgedIss,
    tokens: describeTokens(provider.tokens()),
    tools: tools.map((t) => t.name),
    whoami,
    list_events: events,
    ...common(),
  });
}

async function refused() {
  const first = await firstConnect();
  if (first instanceof UnauthorizedError && provider.callbacks.length > 0) {
    throw new Error('the authorization server issued a code for a redirect URI the document does not list');
  }
  printSummary({
    flow: 'authorization_code with a client id metadata document not listing the redirect URI',
    outcome: 'refused',
    error: describeError(first),
    ...common(),
  });
}

const mode = process.argv[2] ?? 'basic';
try {
  if (mode === 'basic') await basic();
  else if (mode === 'refused') await refused();
  else fail(`unknown mode ${mode} (basic or refused)`);
  process.exit(0);
} catch (error) {
  fail(`unexpected error in the ${mode} CIMD authorization-code flow`, error);
}
