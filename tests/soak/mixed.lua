-- wrk script for the soak: hits, misses, writes that invalidate, rate-limited requests, query
-- strings, 404s and unrouted paths, mixed at random. (No HEAD: wrk's parser does not know the
-- method and would wait for the body a HEAD response announces.)
local counter = 0

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
  io.write(string.format("soak-total %d\n", summary.requests))
  io.write(string.format("soak-errors %d %d %d %d\n", summary.errors.connect, summary.errors.read,
                         summary.errors.write, summary.errors.timeout))
end
