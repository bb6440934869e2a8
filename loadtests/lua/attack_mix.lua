-- The soak's mixed HTTP workload (loadtests/attack/soak.py), in turn: plaintext, JSON, a
-- 16 KiB upload, an app error (500), and a WSGI app that leaves its request body unread.
local requests = {}
local i = 0

init = function(args)
  requests = {
    wrk.format("GET", "/"),
    wrk.format("GET", "/json"),
    wrk.format("POST", "/upload", {["Content-Type"] = "application/octet-stream"}, string.rep("u", 16384)),
    wrk.format("GET", "/fault/return-without-response"),
    wrk.format("POST", "/wsgi/fault/never-reads-body", nil, string.rep("w", 4096)),
  }
end

request = function()
  i = i % #requests + 1
  return requests[i]
end
