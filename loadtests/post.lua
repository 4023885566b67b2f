-- wrk script: POST prepared bodies with X-API-Key headers, cycling through every (key, body) pair.
--   wrk -s loadtests/post.lua URL -- KEYS_FILE BODIES_FILE RUN_ID
-- KEYS_FILE / BODIES_FILE hold one key / one JSON body per line. Every "@ID@" in a body becomes
-- RUN_ID-<request number>, so that each event carries a message id of its own (as SDKs send) and the
-- workers' deduplication never discards a replayed body.
-- With EP_WRK_FIXED=1 every request is built once, in init (ids RUN_ID-<slot>, one per (key, body) pair),
-- and replayed: the cheapest mode, for rows without a worker (the edge does not deduplicate).
-- With EP_WRK_RATE=<requests/s> in the environment the script paces itself to that rate (a schedule kept
-- from the start, as wrk2 does, so a slow answer does not lower the offered rate as long as connections
-- are free); without it wrk runs its usual closed loop.
local requests, bodies, run_id = {}, {}, "run"
local fixed = os.getenv("EP_WRK_FIXED") == "1"
local n, sent = 0, 0

local function lines(path)
  local out = {}
  for line in io.lines(path) do
    if #line > 0 then out[#out + 1] = line end
  end
  return out
end

local function split(text, sep)
  local parts, start = {}, 1
  while true do
    local i, j = string.find(text, sep, start, true)
    if not i then parts[#parts + 1] = string.sub(text, start); return parts end
    parts[#parts + 1] = string.sub(text, start, i - 1)
    start = j + 1
  end
end

function init(args)
  local keys, raw = lines(args[1]), lines(args[2])
  run_id = args[3] or run_id
  for i = 0, math.max(#keys, #raw) - 1 do
    requests[#requests + 1] = {
      headers = {["X-API-Key"] = keys[i % #keys + 1], ["Content-Type"] = "application/json"},
      parts = split(raw[i % #raw + 1], "@ID@"),
    }
    if fixed then
      local r = requests[#requests]
      requests[#requests] = wrk.format("POST", nil, r.headers, table.concat(r.parts, run_id .. "-" .. i))
    end
  end
end

function request()
  n = n % #requests + 1
  if fixed then return requests[n] end
  sent = sent + 1
  local r = requests[n]
  return wrk.format("POST", nil, r.headers, table.concat(r.parts, run_id .. "-" .. sent))
end

local rate = tonumber(os.getenv("EP_WRK_RATE") or "")
if rate then
  local ffi = require("ffi")
  ffi.cdef("typedef struct { long tv_sec; long tv_nsec; } ep_timespec; int clock_gettime(int, ep_timespec *);")
  local ts = ffi.new("ep_timespec")
  local function now_ms()
    ffi.C.clock_gettime(1, ts)  -- CLOCK_MONOTONIC
    return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
  end
  local period, due = 1000 / rate, nil
  function delay()
    local now = now_ms()
    due = (due or now) + period
    return math.max(0, math.floor(due - now))
  end
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
