// A fault-injecting HTTP proxy in front of a real edge. Per request it follows a script entry:
// 'forward' (default), 'lost' (forward, let the edge store it, then close the client's connection
// without answering), or {status, headers} (answer itself, forwarding nothing). It records each request
// (time, action, message ids) and the edge's status for forwarded ones.
import http from 'node:http';
import zlib from 'node:zlib';

export async function startFaultProxy(target, script = []) {
  const seen = [];
  const sockets = new Set();
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', async () => {
      const raw = Buffer.concat(chunks);
      const text = (req.headers['content-encoding'] === 'gzip' ? zlib.gunzipSync(raw) : raw).toString('utf8');
      const step = script.shift() ?? 'forward';
      const record = { at: performance.now(), action: typeof step === 'string' ? step : `answer ${step.status}`, body: JSON.parse(text), edgeStatus: null };
      seen.push(record);
      if (typeof step === 'object') {
        res.writeHead(step.status, { 'content-type': 'application/json', ...(step.headers ?? {}) });
        res.end(JSON.stringify({ error: { code: 'INJECTED', message: 'fault proxy', details: null } }));
        return;
      }
      try {
        const headers = { ...req.headers };
        delete headers.host;
        const answer = await fetch(target + req.url, { method: req.method, headers, body: raw });
        const answerBody = Buffer.from(await answer.arrayBuffer());
        record.edgeStatus = answer.status;
        if (step === 'lost') {
          req.socket.destroy(); // the edge has the events; the client never hears so
          return;
        }
        res.writeHead(answer.status, Object.fromEntries(answer.headers));
        res.end(answerBody);
      } catch (error) {
        res.writeHead(502, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { code: 'PROXY', message: String(error), details: null } }));
      }
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    seen,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
