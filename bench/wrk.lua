-- wrk script of `make bench`.
--   wrk ... -s bench/wrk.lua URL -- METHOD [TOKENS_FILE|- THREADS [PATHS_FILE]]
-- With a tokens file (one access token a line), each request carries the next user's token:
-- thread i of n sends tokens i, i+n, i+2n, ... so threads never share a user. With a paths file
-- (one path and query a line), each request asks for the next path the same way. When the run is
-- over, one line "WRK_JSON {...}" gives the totals and latency percentiles in microseconds.

local threads = {}
local count = 0

function setup(thread)
  count = count + 1
  thread:set("id", count)
  table.insert(threads, thread)
end

local tokens = {}
local paths = {}
local index = 0
local step = 1

function init(args)
  wrk.method = args[1] or "GET"
  if args[2] and args[2] ~= "-" then
    for line in io.lines(args[2]) do
      if #line > 0 then
        tokens[#tokens + 1] = "Bearer " .. line
      end
    end
  end
  if args[4] then
    for line in io.lines(args[4]) do
      if #line > 0 then
        paths[#paths + 1] = line
      end
    end
  end
  step = tonumber(args[3] or "1")
  index = id - 1
end

function request()
  local path = nil
  if #paths > 0 then
    path = paths[(index % #paths) + 1]
  end
  local headers = nil
  if #tokens > 0 then
    headers = { ["Authorization"] = tokens[(index % #tokens) + 1] }
  end
  index = index + step
  return wrk.format(nil, path, headers)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "bytes": %d, "errors": {"connect": %d, ' ..
    '"read": %d, "write": %d, "status": %d, "timeout": %d}, "latency_us": {"mean": %.1f, ' ..
    '"stdev": %.1f, "max": %d, "p50": %d, "p90": %d, "p99": %d, "p999": %d}}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency.mean, latency.stdev, latency.max, latency:percentile(50),
    latency:percentile(90), latency:percentile(99), latency:percentile(99.9)))
end
