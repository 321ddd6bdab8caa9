// oidc-provider (panva's certified OpenID provider, pinned in package.json) as the
// authorization server of the mcp-oauth interop tests (driven by tests/oidc_provider.rs).
//
//   node server.mjs [--exit-with-stdin]
//
// It issues RFC 9068 JWT access tokens (`typ: at+jwt`) through client_credentials, bound by
// RFC 8707 resource indicators to the resource(s) it is given; every other resource is refused
// with `invalid_target`. Two static confidential clients (client_secret_basic): one whose access
// tokens are signed with RS256, one with ES256. Signing keys are generated at startup.
//
// DPoP (RFC 9449): a token request with a `DPoP` proof (htm POST, htu the token endpoint) gets
// a DPoP-bound access token (`token_type: DPoP`, the proof key's RFC 7638 thumbprint in the
// JWT's `cnf.jkt`); without a proof, a Bearer token as before. No server nonces (a proof's
// `iat` within 5 minutes is enough, so one request gets a token); a proof's `jti` is accepted
// once per client.
//
// Environment:
//   PORT       the port to listen on, on 127.0.0.1 (required)
//   RESOURCES  the resource indicators it issues tokens for, space-separated (required; each is
//              also the token's `aud`)
//   LIFETIME_MS  the process exits after this long (default 120000), so that nothing outlives a
//              test that was killed
//
// Prints, one per line: `issuer: …`, `client id: …`, `es256 client id: …`, `client secret: …`
// (both clients share it), then `ready`.
//
// Test-only administration, on the same loopback port (never in a real deployment):
//   POST /admin/rotate    adds a new RS256 key and a new ES256 key in front of the key set: they
//                         sign every token from then on, the previous keys stay published
//                         (see rotate() for how, given that oidc-provider reads its key set once)
//   GET  /admin/requests  how many requests each path received: {"GET /jwks": 2, …}
//
// With --exit-with-stdin the process also exits when its stdin closes (its parent is gone).

import * as crypto from 'node:crypto';
import * as http from 'node:http';

import { Provider, errors } from 'oidc-provider';

const SCOPES = 'calendar:read calendar:write calendar:admin';
const CLIENT_ID = 'calendar-client';
const ES256_CLIENT_ID = 'calendar-client-es256';
const ACCESS_TOKEN_TTL = 300;

function env(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`FAIL: the environment variable ${name} is required`);
    process.exit(1);
  }
  return value;
}

const PORT = Number.parseInt(env('PORT'), 10);
const RESOURCES = new Set(env('RESOURCES').split(' ').filter(Boolean));
const LIFETIME_MS = Number.parseInt(process.env.LIFETIME_MS ?? '120000', 10);
const ISSUER = `http://127.0.0.1:${PORT}`;
const CLIENT_SECRET = crypto.randomBytes(32).toString('base64url');

setTimeout(() => {
  console.error(`oidc-provider test server: exiting after ${LIFETIME_MS} ms`);
  process.exit(3);
}, LIFETIME_MS).unref();
if (process.argv.includes('--exit-with-stdin')) {
  process.stdin.on('end', () => process.exit(0));
  process.stdin.on('error', () => process.exit(0));
  process.stdin.resume();
}

/** A private signing JWK for `alg` (RS256: RSA 2048; ES256: P-256). The provider sets `kid`. */
function signingKey(alg) {
  const { privateKey } =
    alg === 'RS256'
      ? crypto.generateKeyPairSync('rsa', { modulusLength: 2048 })
      : crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { ...privateKey.export({ format: 'jwk' }), alg, use: 'sig' };
}

// The key set, newest first: for each algorithm the first key that matches signs.
let keys = [signingKey('RS256'), signingKey('ES256')];

function configuration(jwks) {
  return {
    jwks: { keys: jwks },
    clients: [
      {
        client_id: CLIENT_ID,
        client_secret: CLIENT_SECRET,
        client_name: 'mcp-oauth interop (RS256 access tokens)',
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: 'client_secret_basic',
        scope: SCOPES,
      },
      {
        client_id: ES256_CLIENT_ID,
        client_secret: CLIENT_SECRET,
        client_name: 'mcp-oauth interop (ES256 access tokens)',
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: 'client_secret_basic',
        scope: SCOPES,
        access_token_signing_alg: 'ES256',
      },
    ],
    // A client property (not a registered metadata name) choosing the JWS algorithm of the
    // JWT access tokens issued to it; RS256 when absent.
    extraClientMetadata: {
      properties: ['access_token_signing_alg'],
      validator(_ctx, key, value) {
        if (key === 'access_token_signing_alg' && value !== undefined && !['RS256', 'ES256'].includes(value)) {
          throw new errors.InvalidClientMetadata('access_token_signing_alg must be RS256 or ES256');
        }
      },
    },
    scopes: ['openid', ...SCOPES.split(' ')],
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: false },
      revocation: { enabled: false },
      // On by default in oidc-provider 9; stated here because the tests depend on it. Without
      // `nonceSecret` there are no nonces: `requireNonce` must stay false (its default), and
      // a proof that carries a `nonce` is refused.
      dPoP: { enabled: true, allowReplay: false },
      resourceIndicators: {
        enabled: true,
        // client_credentials requests must name their resource (RFC 8707).
        defaultResource: () => undefined,
        useGrantedResource: () => false,
        getResourceServerInfo(_ctx, resourceIndicator, client) {
          if (!RESOURCES.has(resourceIndicator)) {
            throw new errors.InvalidTarget(`unknown resource ${resourceIndicator}`);
          }
          return {
            scope: SCOPES,
            audience: resourceIndicator,
            accessTokenTTL: ACCESS_TOKEN_TTL,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: client.access_token_signing_alg ?? 'RS256' } },
          };
        },
      },
    },
  };
}

function newProvider() {
  const provider = new Provider(ISSUER, configuration(keys));
  provider.on('server_error', (_ctx, error) => console.error('oidc-provider server_error', error));
  provider.on('grant.error', (_ctx, error) => console.error('oidc-provider grant.error', error.message, error.error_description ?? ''));
  return provider.callback();
}

let handle = newProvider();
const requests = {};

/**
 * The rotation. oidc-provider reads its `jwks` configuration once, in its constructor, and has
 * no API to change the key set of a running instance: its documented way to rotate is a new
 * instance with the new key set (new key first, previous keys kept so that the tokens they
 * signed stay verifiable), rolled out by a restart. Here the new instance replaces the old one
 * behind the same listening socket, so the issuer, its endpoints and the process stay the same
 * and the only change a resource server sees is the key set: a new key, that signs from now on.
 */
function rotate() {
  const added = [signingKey('RS256'), signingKey('ES256')];
  keys = [...added, ...keys];
  handle = newProvider();
  return { keys: keys.length };
}

function admin(req, res) {
  const route = `${req.method} ${req.url}`;
  let body;
  if (route === 'POST /admin/rotate') {
    body = rotate();
  } else if (route === 'GET /admin/requests') {
    body = requests;
  } else {
    res.writeHead(404).end();
    return;
  }
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

const server = http.createServer((req, res) => {
  if (req.url.startsWith('/admin/')) {
    admin(req, res);
    return;
  }
  const path = `${req.method} ${new URL(req.url, ISSUER).pathname}`;
  requests[path] = (requests[path] ?? 0) + 1;
  handle(req, res);
});
server.on('error', (error) => {
  console.error(`FAIL: cannot listen on 127.0.0.1:${PORT}: ${error.message}`);
  process.exit(1);
});
server.listen(PORT, '127.0.0.1', () => {
  console.log(`issuer: ${ISSUER}`);
  console.log(`client id: ${CLIENT_ID}`);
  console.log(`es256 client id: ${ES256_CLIENT_ID}`);
  console.log(`client secret: ${CLIENT_SECRET}`);
  console.log('ready');
});
