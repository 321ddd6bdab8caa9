// Shared helpers of the DPoP interop scripts: environment, an HTTP log that shows how each
// request was authorized (scheme, DPoP proof claims, token types; never a token or a
// secret), and the summary line.

import { createHash } from 'node:crypto';

/** A required environment variable. */
export function env(name) {
  const value = process.env[name];
  if (!value) {
    fail(`the environment variable ${name} is required`);
  }
  return value;
}

/** Prints `message` on stderr and exits with status 1. */
export function fail(message, error) {
  console.error(`FAIL: ${message}`);
  if (error) {
    console.error(error);
  }
  process.exit(1);
}

/** Exits with status 3 if the script is still running after `ms` (the Rust side kills later). */
export function watchdog(ms = 60_000) {
  setTimeout(() => {
    console.error(`FAIL: still running after ${ms} ms`);
    process.exit(3);
  }, ms).unref();
}

/** The parameters of a `WWW-Authenticate` challenge, with its scheme as `scheme`. */
export function parseChallenge(header) {
  if (!header) return undefined;
  const params = { scheme: header.split(' ')[0] };
  for (const match of header.matchAll(/([A-Za-z0-9_-]+)="([^"]*)"/g)) {
    params[match[1]] = match[2];
  }
  return params;
}

function base64url(bytes) {
  return Buffer.from(bytes).toString('base64url');
}

function decodeJson(segment) {
  try {
    return JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
}

/** The RFC 7638 SHA-256 thumbprint of a public JWK, computed here independently of the SDK. */
export function thumbprint(jwk) {
  const members = {
    EC: ['crv', 'kty', 'x', 'y'],
    OKP: ['crv', 'kty', 'x'],
    RSA: ['e', 'kty', 'n'],
  }[jwk?.kty];
  if (!members) return undefined;
  const canonical = JSON.stringify(Object.fromEntries(members.map((m) => [m, jwk[m]])));
  return base64url(createHash('sha256').update(canonical).digest());
}

/** What a DPoP proof says (its header and claims; the proof is single-use, not a secret). */
function describeProof(proof, accessToken) {
  const [header, claims] = proof.split('.').map(decodeJson);
  const described = {
    typ: header?.typ,
    alg: header?.alg,
    jkt: thumbprint(header?.jwk),
    htm: claims?.htm,
    htu: claims?.htu,
    has_jti: typeof claims?.jti === 'string',
    has_nonce: claims?.nonce !== undefined,
    has_ath: claims?.ath !== undefined,
  };
  if (accessToken !== undefined && claims?.ath !== undefined) {
    described.ath_matches = claims.ath === base64url(createHash('sha256').update(accessToken).digest());
  }
  return described;
}

/** The `cnf.jkt` of a JWT access token, if it has one. */
function boundTo(accessToken) {
  return decodeJson(String(accessToken).split('.')[1] ?? '')?.cnf?.jkt;
}

function requestHeaders(input, init) {
  return new Headers(init.headers ?? (input instanceof Request ? input.headers : undefined));
}

/**
 * A `fetch` that records every exchange in `log`: method, URL, status, `WWW-Authenticate`,
 * the `Authorization` scheme (not its credentials), the `DPoP` proof's header and claims,
 * form parameters except credentials, the JSON-RPC method, and of a token response its
 * `token_type`, `scope`, error and the access token's `cnf.jkt`.
 */
export function recordingFetch(log) {
  return async (input, init = {}) => {
    const url = input instanceof Request ? input.url : String(input);
    const method = init.method ?? (input instanceof Request ? input.method : 'GET');
    const entry = { method, url };
    const headers = requestHeaders(input, init);
    const authorization = headers.get('authorization');
    let presentedToken;
    if (authorization) {
      const [scheme, credentials] = authorization.split(' ');
      entry.auth_scheme = scheme;
      if (/^(bearer|dpop)$/i.test(scheme)) presentedToken = credentials;
    }
    const proof = headers.get('dpop');
    if (proof) entry.dpop = describeProof(proof, presentedToken);
    const body = init.body;
    if (body instanceof URLSearchParams) {
      entry.form = Object.fromEntries(
        [...body.entries()].filter(
          ([k]) => !['client_secret', 'code', 'code_verifier', 'refresh_token', 'client_assertion'].includes(k)
        )
      );
    } else if (typeof body === 'string') {
      try {
        const message = JSON.parse(body);
        entry.rpc = Array.isArray(message) ? message.map((m) => m.method) : message.method;
        if (message.method === 'tools/call') entry.tool = message.params?.name;
      } catch {
        // Not JSON: nothing to record.
      }
    }
    const response = await fetch(input, init);
    entry.status = response.status;
    const challenge = response.headers.get('www-authenticate');
    if (challenge) entry.www_authenticate = challenge;
    if (entry.form?.grant_type) {
      const answer = await response
        .clone()
        .json()
        .catch(() => undefined);
      entry.token_response = {
        token_type: answer?.token_type,
        scope: answer?.scope,
        error: answer?.error,
        error_description: answer?.error_description,
        has_refresh_token: Boolean(answer?.refresh_token),
        cnf_jkt: answer?.access_token ? boundTo(answer.access_token) : undefined,
      };
    }
    log.push(entry);
    return response;
  };
}

/** The first text content of a tool result, parsed as JSON. */
export function toolJson(name, result) {
  if (result.isError) {
    throw new Error(`${name} returned an error result: ${JSON.stringify(result)}`);
  }
  const text = result.content?.find((c) => c.type === 'text')?.text;
  if (text === undefined) {
    throw new Error(`${name} returned no text content: ${JSON.stringify(result)}`);
  }
  return JSON.parse(text);
}

/** What an error looks like to the caller: its class, code, status and message. */
export function describeError(error) {
  return {
    name: error?.constructor?.name ?? typeof error,
    code: error?.code,
    status: error?.status ?? error?.data?.status,
    message: String(error?.message ?? error),
  };
}

/** What the provider holds: the token type, scope, and the access token's `cnf.jkt`. */
export function describeTokens(tokens) {
  return {
    token_type: tokens?.token_type,
    scope: tokens?.scope,
    has_refresh_token: Boolean(tokens?.refresh_token),
    cnf_jkt: tokens?.access_token ? boundTo(tokens.access_token) : undefined,
  };
}

/** The token requests of a log: what the client asked the authorization server for. */
export function tokenRequests(log) {
  return log
    .filter((e) => e.form?.grant_type)
    .map((e) => ({ url: e.url, status: e.status, dpop: e.dpop, ...e.form, response: e.token_response }));
}

/** Prints the one-line JSON summary the Rust test reads. */
export function printSummary(summary) {
  process.stdout.write(`${JSON.stringify(summary)}\n`);
}
