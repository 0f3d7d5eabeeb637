-- wrk script for the soak: hits, misses, writes that invalidate, rate-limited requests, query
-- strings, 404s and unrouted paths, mixed at random. (No HEAD: wrk's parser does not know the
-- method and would wait for the body a HEAD response announces.)
local counter = 0

-- Answers by kind, counted in the thread and read by done() through thread:get(): a soak that
-- only counted socket errors would pass on a million 502s.
local threads = {}
setup = function(thread)
  table.insert(threads, thread)
end
ok, not_found, limited, server_error, unexpected, hits = 0, 0, 0, 0, 0, 0

response = function(status, headers, body)
  if status == 200 then
    ok = ok + 1
    if headers["X-Cache"] == "HIT" then
      hits = hits + 1
    end
  elseif status == 404 then
    not_found = not_found + 1
  elseif status == 429 then
    limited = limited + 1
  elseif status >= 500 then
    server_error = server_error + 1
  else
    unexpected = unexpected + 1
  end
end

request = function()
  counter = counter + 1
  local r = math.random()
  local id = math.random(1, 50)
  if r < 0.55 then
    return wrk.format("GET", "/products/" .. id)
  elseif r < 0.65 then
    return wrk.format("GET", "/products/" .. id .. "?utm=" .. counter)
  elseif r < 0.80 then
    return wrk.format("GET", "/products/missing-" .. counter)  -- 404 from the API: not stored
  elseif r < 0.88 then
    return wrk.format("PUT", "/products/" .. id, {["Content-Type"] = "application/json"},
                      '{"id":' .. id .. ',"name":"soak","price":' .. counter .. '}')
  elseif r < 0.97 then
    return wrk.format("GET", "/limited/" .. id)  -- mostly 429 once the per-second limit is hit
  else
    return wrk.format("GET", "/other/" .. counter)  -- no route: BYPASS
  end
end

done = function(summary, latency, requests)
  local totals = {ok = 0, not_found = 0, limited = 0, server_error = 0, unexpected = 0, hits = 0}
  for _, thread in ipairs(threads) do
    for name, _ in pairs(totals) do
      totals[name] = totals[name] + thread:get(name)
    end
  end
  io.write(string.format("soak-statuses %d %d %d %d %d %d\n", totals.ok, totals.hits,
                         totals.not_found, totals.limited, totals.server_error, totals.unexpected))
  io.write(string.format("soak-total %d\n", summary.requests))
  io.write(string.format("soak-errors %d %d %d %d\n", summary.errors.connect, summary.errors.read,
                         summary.errors.write, summary.errors.timeout))
end
