// Server-sent events: a line parser (per the HTML spec: `data:` lines joined by newlines, a blank line
// dispatches, `:` lines are comments/keep-alives) and one way to open a stream per runtime. In Node the
// stream runs over node:http with its socket unref'd, so an open stream never keeps a process alive
// (the client's beforeExit flush still fires); elsewhere over fetch.

export class EventParser {
  constructor(onEvent) {
    this._onEvent = onEvent;
    this._buffer = '';
    this._name = 'message';
    this._data = [];
  }

  push(text) {
    this._buffer += text;
    let end;
    while ((end = this._buffer.search(/\r\n|\n|\r/)) !== -1) {
      const line = this._buffer.slice(0, end);
      const sep = this._buffer.startsWith('\r\n', end) ? 2 : 1;
      this._buffer = this._buffer.slice(end + sep);
      this._line(line);
    }
  }

  _line(line) {
    if (line === '') {
      if (this._data.length > 0) this._onEvent(this._name, this._data.join('\n'));
      this._name = 'message';
      this._data = [];
      return;
    }
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') this._name = value;
    else if (field === 'data') this._data.push(value);
  }
}

const IS_NODE = typeof globalThis.process?.versions?.node === 'string';

/**
 * Open the stream (over the caller's fetch when one was given, `customFetch`). `onOpen` runs once the answer's headers arrived (the subscription is live); the
 * promise resolves when the stream ends, rejects on an error or a non-200 answer. `signal` aborts it.
 */
export function openStream(url, headers, { onOpen, onEvent, signal, fetchImpl, customFetch = false }) {
  return IS_NODE && !customFetch
    ? nodeStream(url, headers, onOpen, onEvent, signal)
    : fetchStream(url, headers, onOpen, onEvent, signal, fetchImpl);
}

async function nodeStream(url, headers, onOpen, onEvent, signal) {
  const http = url.startsWith('https:') ? await import('node:https') : await import('node:http');
  return new Promise((resolve, reject) => {
    // agent: false: a pooled (keep-alive) socket is ref'd again by the agent whenever it is handed out.
    const req = http.request(url, { method: 'GET', headers, signal, agent: false });
    req.on('socket', (socket) => socket.unref());
    req.on('error', reject);
    req.on('response', (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        reject(Object.assign(new Error(`stream answered ${res.statusCode}`), { status: res.statusCode }));
        return;
      }
      res.socket?.unref();
      onOpen();
      const parser = new EventParser(onEvent);
      res.setEncoding('utf8');
      res.on('data', (chunk) => parser.push(chunk));
      res.on('end', resolve);
      res.on('error', reject);
      res.on('aborted', () => reject(new Error('stream aborted')));
    });
    req.end();
  });
}

async function fetchStream(url, headers, onOpen, onEvent, signal, fetchImpl) {
  const response = await fetchImpl(url, { method: 'GET', headers, signal });
  if (response.status !== 200 || !response.body) {
    throw Object.assign(new Error(`stream answered ${response.status}`), { status: response.status });
  }
  onOpen();
  const parser = new EventParser(onEvent);
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    parser.push(decoder.decode(value, { stream: true }));
  }
}
