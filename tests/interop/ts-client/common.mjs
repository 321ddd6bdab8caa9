// Shared helpers of the interop scripts: environment, an HTTP log, and the summary line.

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
export function watchdog(ms = 45_000) {
  setTimeout(() => {
    console.error(`FAIL: still running after ${ms} ms`);
    process.exit(3);
  }, ms).unref();
}

/** Parses the parameters of a `Bearer` challenge (enough for the challenges of these tests). */
export function parseChallenge(header) {
  if (!header) return undefined;
  const params = {};
  for (const match of header.matchAll(/([A-Za-z0-9_-]+)="([^"]*)"/g)) {
    params[match[1]] = match[2];
  }
  return params;
}

/**
 * A `fetch` that records every exchange in `log` (no secrets: no headers but
 * `WWW-Authenticate` and `Location`, form parameters except credentials, the JSON-RPC method).
 */
export function recordingFetch(log) {
  return async (input, init = {}) => {
    const url = input instanceof Request ? input.url : String(input);
    const method = init.method ?? (input instanceof Request ? input.method : 'GET');
    const entry = { method, url };
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

/** What an error looks like to the caller: its class, code and message. */
export function describeError(error) {
  return {
    name: error?.constructor?.name ?? typeof error,
    code: error?.code,
    message: String(error?.message ?? error),
  };
}

/** Prints the one-line JSON summary the Rust test reads. */
export function printSummary(summary) {
  process.stdout.write(`${JSON.stringify(summary)}\n`);
}
