// A local HTTP server playing the edge for unit tests: it records every request (body gunzipped and
// parsed) and answers from a script, one entry per request, then 202 {"accepted": N}.
import http from 'node:http';
import zlib from 'node:zlib';

/**
 * Script entries: {status, headers?, body?} | 'destroy' (close the socket without answering) |
 * 'hang' (never answer) | a function (parsed, request) returning one of those.
 */
export async function startEdge(script = []) {
  const requests = [];
  const sockets = new Set();
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const gzipped = req.headers['content-encoding'] === 'gzip';
      const text = (gzipped ? zlib.gunzipSync(raw) : raw).toString('utf8');
      const parsed = JSON.parse(text);
      const record = { at: performance.now(), headers: req.headers, rawBytes: raw.length, textBytes: Buffer.byteLength(text), gzipped, body: parsed };
      requests.push(record);
      let step = script.shift() ?? { status: 202 };
      if (typeof step === 'function') step = step(parsed, record) ?? { status: 202 };
      if (step === 'destroy') return req.socket.destroy();
      if (step === 'hang') return;
      const answer = step.body ?? (step.status < 300 ? { accepted: parsed.events.length } : { error: { code: 'X', message: 'x', details: null } });
      res.writeHead(step.status, { 'content-type': 'application/json', ...(step.headers ?? {}) });
      res.end(JSON.stringify(answer));
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    requests,
    script,
    /** All events the server saw, in order (retries included). */
    events() {
      return requests.flatMap((r) => r.body.events);
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** Small timings so that retry tests take milliseconds; logger silenced unless a test collects it. */
export function fastOptions(url, extra = {}) {
  return { apiKey: 'ep_live_test', baseUrl: url, flushIntervalMs: 20, backoffBaseMs: 5, backoffCapMs: 20, requestTimeoutMs: 2_000, logger: null, flushOnExit: false, ...extra };
}

/** A logger that keeps its lines. */
export function collectingLogger() {
  const lines = [];
  return { lines, warn: (m) => lines.push(m), error: (m) => lines.push(m) };
}
