-- One wrk script for every storm target (benchmarks/bench_storm.py): Escalade's
-- POST /v1/alerts (one alert per request), POST /api/v2/alerts (a list, Alertmanager's
-- format: Escalade when it has the endpoint, and Alertmanager itself) and
-- POST /v1/escalations. Settings come from the environment:
--   STORM_FORMAT  v1 | v2 | create
--   STORM_BATCH   alerts per request (v2 only; v1 and create send one)
--   STORM_KEYS    "10": ten alert keys over and over (the dedup path); "unique": every
--                 alert a new key (each opens an escalation)
--   STORM_AUTH    an Authorization header value, or empty
--   STORM_TAG     a run tag that keeps keys of different runs apart
local format = os.getenv("STORM_FORMAT") or "v1"
local batch = tonumber(os.getenv("STORM_BATCH") or "1")
local keys = os.getenv("STORM_KEYS") or "unique"
local auth = os.getenv("STORM_AUTH") or ""
local tag = os.getenv("STORM_TAG") or "storm"

local counter = 0
thread_id = 0 -- set per thread by setup()
local threads = {}
local next_id = 0

function setup(thread)
  thread:set("thread_id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

local function key()
  counter = counter + 1
  if keys == "10" then
    return tag .. "-k" .. (counter % 10)
  end
  return tag .. "-t" .. thread_id .. "-" .. counter
end

local function am_alert(k)
  return '{"labels":{"alertname":"DiskFull","key":"' .. k .. '","severity":"critical"},'
    .. '"annotations":{"summary":"Disk full on ' .. k .. '"}}'
end

function request()
  local headers = { ["Content-Type"] = "application/json" }
  if auth ~= "" then
    headers["Authorization"] = auth
  end
  local body
  if format == "v2" then
    local items = {}
    for i = 1, batch do
      items[i] = am_alert(key())
    end
    body = "[" .. table.concat(items, ",") .. "]"
  elseif format == "create" then
    local k = key()
    body = '{"subject":"Cannot log in ' .. k .. '","customer":{"email":"' .. k .. '@example.com"}}'
  else
    local k = key()
    body = '{"source":"storm","key":"' .. k .. '","severity":"critical","summary":"Disk full on '
      .. k .. '"}'
  end
  return wrk.format("POST", nil, headers, body)
end

function done(summary, latency, requests)
  -- machine-readable line for the harness: requests, non-2xx/3xx answers, socket errors
  -- and timeouts, p50/p99 latency and the duration in microseconds
  io.write(string.format("STORM %d %d %d %d %d %d\n", summary.requests,
    summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99), summary.duration))
end
