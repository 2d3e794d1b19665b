-- wrk script: refresh_token grant. $REFRESH_POOL holds `<client index> <refresh token>` lines
-- (client index into $CLIENTS_BASIC, from 1); each request spends the next line, from line
-- $REFRESH_OFFSET + 1 on, so no token is ever presented twice. When the pool runs out the
-- request carries the token "exhausted" (answered 400) and `EXTRA exhausted=n` reports it; the
-- caller adds `EXTRA used=n` to the offset of the next run.
local dir = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
local lib = dofile(dir .. "/bench_lib.lua")
local basics = lib.words("CLIENTS_BASIC")
lib.count_statuses({ "used", "exhausted" })
used = 0
exhausted = 0
local pool = nil

init = function(args)
  pool = lib.lines(os.getenv("REFRESH_POOL"), tonumber(os.getenv("REFRESH_OFFSET") or "0"),
    tid or 0, lib.thread_count())
end

request = function()
  used = used + 1
  local line = pool[used]
  local k, token
  if line then
    k, token = line:match("^(%d+) (%S+)$")
    k = tonumber(k)
  else
    exhausted = exhausted + 1
    k, token = 1, "exhausted"
  end
  return wrk.format("POST", "/token", {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Authorization"] = "Basic " .. basics[k],
  }, "grant_type=refresh_token&refresh_token=" .. token)
end
