// A reverse proxy in front of the calendar example for the MCP conformance suite, whose
// client speaks no OAuth: it adds `Authorization: Bearer <token>` to every request and
// forwards everything else byte for byte. In particular `Host` and `Origin` reach the server
// exactly as the suite sent them, so that the `dns-rebinding-protection` scenario tests the
// server and not this proxy. Responses (event streams included) are streamed back as they
// come.
//
//   CONFORMANCE_BEARER_TOKEN=<token> node bearer_proxy.mjs <listen port> <upstream host:port>
//
// Listens on 127.0.0.1 and, where the machine has it, [::1] (`localhost` may resolve to
// either); prints `ready` once listening. Driven by tests/conformance.rs.

import http from 'node:http';

const [listenPort, upstream] = process.argv.slice(2);
const token = process.env.CONFORMANCE_BEARER_TOKEN;
if (!listenPort || !upstream || !token) {
  console.error(
    'usage: CONFORMANCE_BEARER_TOKEN=<token> node bearer_proxy.mjs <listen port> <upstream host:port>',
  );
  process.exit(2);
}
const split = upstream.lastIndexOf(':');
const upstreamHost = upstream.slice(0, split).replace(/^\[(.*)\]$/, '$1');
const upstreamPort = Number(upstream.slice(split + 1));

function forward(request, response) {
  // rawHeaders keeps every header as sent (names, order, repeats); only credentials change.
  const headers = [];
  for (let i = 0; i < request.rawHeaders.length; i += 2) {
    if (request.rawHeaders[i].toLowerCase() !== 'authorization') {
      headers.push(request.rawHeaders[i], request.rawHeaders[i + 1]);
    }
  }
  headers.push('Authorization', `Bearer ${token}`);
  const outgoing = http.request(
    {
      host: upstreamHost,
      port: upstreamPort,
      method: request.method,
      path: request.url,
      headers,
      agent: false,
    },
    (incoming) => {
      response.writeHead(incoming.statusCode, incoming.statusMessage, incoming.rawHeaders);
      response.flushHeaders();
      incoming.pipe(response);
    },
  );
  outgoing.on('error', (error) => {
    if (!response.headersSent) {
      response.writeHead(502, { 'content-type': 'text/plain' });
      response.end(`bearer_proxy: upstream ${upstream}: ${error.message}`);
    } else {
      response.destroy(error);
    }
  });
  // The client went away (a closed event stream): stop the upstream request too.
  response.on('close', () => outgoing.destroy());
  request.pipe(outgoing);
}

function listen(host) {
  return new Promise((resolve, reject) => {
    const server = http.createServer(forward);
    server.once('error', reject);
    server.listen(Number(listenPort), host, () => resolve(server));
  });
}

await listen('127.0.0.1');
try {
  await listen('::1');
} catch (error) {
  // No IPv6 loopback here: clients resolving localhost to 127.0.0.1 still reach us.
  console.error(`bearer_proxy: not listening on [::1]: ${error.message}`);
}
console.log('ready');
