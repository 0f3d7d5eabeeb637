-- wrk script for tests/bench/run.sh. The mode is read from the environment when the script is
-- loaded, because wrk decides then whether requests are static (fast) or built per request:
--   BENCH_MODE=one   GET of the URL's own path, static (the default)
--   BENCH_MODE=keys  GET /products/<1..BENCH_KEYS> chosen at random (BENCH_KEYS: default 1000)
--   BENCH_MODE=miss  GET /products/miss-<BENCH_TAG>-<thread>-<n>, a new key every request
--   BENCH_MODE=put   PUT of the URL's own path with a small JSON body, static
-- done() prints one machine-readable line, "BENCH key=value ...", latencies in microseconds.

local mode = os.getenv("BENCH_MODE") or "one"

if mode == "put" then
  wrk.method = "PUT"
  wrk.body = '{"id":42,"name":"Mechanical Keyboard","price":99.99}'
  wrk.headers["Content-Type"] = "application/json"
elseif mode == "keys" then
  local count = tonumber(os.getenv("BENCH_KEYS") or "1000")
  local prepared = {}
  function init(args)
    for i = 1, count do
      prepared[i] = wrk.format("GET", "/products/" .. i)
    end
    math.randomseed(os.time())
  end
  function request()
    return prepared[math.random(count)]
  end
elseif mode == "miss" then
  local tag = os.getenv("BENCH_TAG") or tostring(os.time())
  local counter = 0
  local prefix = "/products/miss-" .. tag .. "-"
  local next_id = 0
  function setup(thread)
    next_id = next_id + 1
    thread:set("thread_id", next_id)
  end
  function init(args)
    -- thread_id is the global that setup() set in this thread's own Lua state.
    prefix = prefix .. tostring(thread_id or 0) .. "-"
  end
  function request()
    counter = counter + 1
    return wrk.format("GET", prefix .. counter)
  end
elseif mode ~= "one" then
  error("BENCH_MODE must be one, keys, miss or put, not " .. mode)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d bytes=%d p50=%d p99=%d p999=%d max=%d " ..
    "status_errors=%d connect_errors=%d read_errors=%d write_errors=%d timeouts=%d\n",
    summary.requests, summary.duration, summary.bytes,
    math.floor(latency:percentile(50)), math.floor(latency:percentile(99)),
    math.floor(latency:percentile(99.9)), math.floor(latency.max),
    e.status, e.connect, e.read, e.write, e.timeout))
end
