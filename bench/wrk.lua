-- wrk script of `make bench`.
--   wrk ... -s bench/wrk.lua URL -- METHOD TOKENS STEP PATHS BODIES KEYS
-- Every argument after METHOD may be "-" (not used).
-- TOKENS: a file of access tokens, one a line; each request carries the next user's token.
-- STEP: the number of threads: thread i of n takes lines i, i+n, i+2n, ... of TOKENS, PATHS and
--   BODIES, so threads never share a user and, with as many lines as requests, never a line.
-- PATHS: a file of paths with their query, one a line; each request asks for the next one.
-- BODIES: a file of JSON bodies, one a line; each request sends the next one.
-- KEYS: a prefix; each request carries "Idempotency-Key: PREFIX-THREAD-N", unique in the run.
-- When the run is over, one line "WRK_JSON {...}" gives the totals, the latency percentiles in
-- microseconds and the count of each HTTP status.

local threads = {}
local count = 0

function setup(thread)
  count = count + 1
  thread:set("id", count)
  table.insert(threads, thread)
end

local function lines(name)
  local found = {}
  if name and name ~= "-" then
    for line in io.lines(name) do
      if #line > 0 then
        found[#found + 1] = line
      end
    end
  end
  return found
end

local tokens = {}
local paths = {}
local bodies = {}
local key_prefix = nil
local index = 0
local step = 1
statuses = {}

function init(args)
  wrk.method = args[1] or "GET"
  for _, token in ipairs(lines(args[2])) do
    tokens[#tokens + 1] = "Bearer " .. token
  end
  step = tonumber(args[3] or "1")
  paths = lines(args[4])
  bodies = lines(args[5])
  if args[6] and args[6] ~= "-" then
    key_prefix = args[6] .. "-" .. id .. "-"
  end
  index = id - 1
end

function request()
  local path = nil
  if #paths > 0 then
    path = paths[(index % #paths) + 1]
  end
  local headers = {}
  if #tokens > 0 then
    headers["Authorization"] = tokens[(index % #tokens) + 1]
  end
  local body = nil
  if #bodies > 0 then
    body = bodies[(index % #bodies) + 1]
    headers["Content-Type"] = "application/json"
  end
  if key_prefix then
    headers["Idempotency-Key"] = key_prefix .. index
  end
  index = index + step
  return wrk.format(nil, path, headers, body)
end

function response(status, headers, body)
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
end

function done(summary, latency, requests)
  local totals = {}
  for _, thread in ipairs(threads) do
    local counted = thread:get("statuses")
    for status, n in pairs(counted) do
      totals[status] = (totals[status] or 0) + n
    end
  end
  local parts = {}
  for status, n in pairs(totals) do
    parts[#parts + 1] = string.format('"%s": %d', status, n)
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "bytes": %d, "errors": {"connect": %d, ' ..
    '"read": %d, "write": %d, "status": %d, "timeout": %d}, "latency_us": {"mean": %.1f, ' ..
    '"stdev": %.1f, "max": %d, "p50": %d, "p90": %d, "p99": %d, "p999": %d}, ' ..
    '"statuses": {%s}}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency.mean, latency.stdev, latency.max, latency:percentile(50),
    latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    table.concat(parts, ", ")))
end
