// A local flag edge for the SDK's flag tests (node:http, a real socket): the config document with its
// ETag (304 when unchanged), the event stream, remote evaluate/assign, and the tracking batch endpoint
// (to see $exposure events). `behaviour` changes its answers; everything is recorded.
import http from 'node:http';
import zlib from 'node:zlib';

export const WORKSPACE = '00000000-0000-4000-8000-000000000001';

export async function startFlagServer() {
  const state = {
    behaviour: { configStatus: 200, stream: true, remoteDelayMs: 0, remoteStatus: 200, flagAnswers: {}, assignAnswers: {} },
    version: 0,
    document: null,
    requests: [],
    configAnswers: [],
    events: [],
    streams: new Set(),
    streamConnections: 0,
  };
  const etag = () => `"${WORKSPACE}:${state.version}"`;
  const sockets = new Set();
  const reply = (res, status, body, headers = {}) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(body === undefined ? '' : JSON.stringify(body));
  };
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const text = (req.headers['content-encoding'] === 'gzip' ? zlib.gunzipSync(raw) : raw).toString('utf8');
      const body = text ? JSON.parse(text) : null;
      state.requests.push({ method: req.method, path: req.url, headers: req.headers, body });
      const b = state.behaviour;
      if (req.url === '/api/v1/sdk/config/stream') {
        if (!b.stream) return reply(res, 404, { error: { code: 'NOT_FOUND', message: 'no stream' } });
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
        res.write(': hello\n\n');
        if (state.document) res.write(`event: config\ndata: ${JSON.stringify(state.document)}\n\n`);
        state.streams.add(res);
        state.streamConnections += 1;
        res.on('close', () => state.streams.delete(res));
        return undefined;
      }
      if (req.url === '/api/v1/sdk/config') {
        if (b.configStatus !== 200 || state.document === null) {
          const status = b.configStatus !== 200 ? b.configStatus : 503;
          state.configAnswers.push(status);
          return reply(res, status, { error: { code: 'UNAVAILABLE', message: 'no config' } });
        }
        if (req.headers['if-none-match'] === etag()) {
          state.configAnswers.push(304);
          res.writeHead(304, { etag: etag() });
          return res.end();
        }
        state.configAnswers.push(200);
        return reply(res, 200, state.document, { etag: etag() });
      }
      if (req.url === '/api/v1/tracking/batch') {
        state.events.push(...body.events);
        return reply(res, 202, { accepted: body.events.length });
      }
      const answer = () => {
        if (b.remoteStatus !== 200) return reply(res, b.remoteStatus, { error: { code: 'BOOM', message: 'failing' } });
        const [, , , kind, key] = req.url.split('/');
        const answers = kind === 'feature-flags' ? b.flagAnswers : b.assignAnswers;
        const found = answers[decodeURIComponent(key)];
        return found ? reply(res, 200, found) : reply(res, 404, { error: { code: 'FLAG_NOT_FOUND', message: 'no such flag' } });
      };
      if (b.remoteDelayMs > 0) setTimeout(answer, b.remoteDelayMs);
      else answer();
      return undefined;
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    state,
    etag,
    publish(flags = [], experiments = []) {
      state.version += 1;
      state.document = { workspace_id: WORKSPACE, version: state.version, generated_at: '2026-12-01T00:00:00Z', flags, experiments };
      for (const res of state.streams) res.write(`event: config\ndata: ${JSON.stringify(state.document)}\n\n`);
      return state.version;
    },
    dropStreams() {
      for (const res of state.streams) res.destroy();
      state.streams.clear();
    },
    paths: (method = 'POST') => state.requests.filter((r) => r.method === method).map((r) => r.path),
    close() {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

/** Poll a condition every 10 ms until it holds or the deadline passes. */
export async function until(condition, timeoutMs = 5_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return true;
}
