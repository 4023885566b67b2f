-- wrk script: POST prepared bodies with X-API-Key headers, cycling through every (key, body) pair.
-- Usage: wrk -s loadtests/post.lua URL -- KEYS_FILE BODIES_FILE   (one key / one JSON body per line)
-- Requests are formatted once in init(), so the generator spends its time on sockets, not on Lua.
local requests = {}
local n = 0

local function lines(path)
  local out = {}
  for line in io.lines(path) do
    if #line > 0 then out[#out + 1] = line end
  end
  return out
end

function init(args)
  local keys, bodies = lines(args[1]), lines(args[2])
  local count = math.max(#keys, #bodies)
  for i = 0, count - 1 do
    local headers = {
      ["X-API-Key"] = keys[i % #keys + 1],
      ["Content-Type"] = "application/json",
    }
    requests[#requests + 1] = wrk.format("POST", nil, headers, bodies[i % #bodies + 1])
  end
end

function request()
  n = n % #requests + 1
  return requests[n]
end

-- One JSON line on stdout that loadtests/loadgen.py parses (latencies in microseconds).
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\nWRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"p50":%d,"p99":%d,"p999":%d,"max":%d,"mean":%.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9), latency.max, latency.mean))
end
