-- wrk script: token introspection (RFC 7662) of the access tokens in $INTROSPECT_TOKENS (one a
-- line, cycled), by the confidential clients of $CLIENTS_BASIC in turn (resource servers).
local dir = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
local lib = dofile(dir .. "/bench_lib.lua")
local basics = lib.words("CLIENTS_BASIC")
-- An answer of active=false is a 200 too, but a cheaper one: count those separately.
inactive = 0
lib.count_statuses({ "inactive" }, function(status, body)
  if status == 200 and not body:find('"active":true', 1, true) then
    inactive = inactive + 1
  end
end)
local tokens = nil
local n = 0

init = function(args)
  tokens = lib.lines(os.getenv("INTROSPECT_TOKENS"), 0, 0, 1)
end

request = function()
  n = n + 1
  return wrk.format("POST", "/introspect", {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Authorization"] = "Basic " .. basics[(n % #basics) + 1],
  }, "token_type_hint=access_token&token=" .. tokens[(n % #tokens) + 1])
end
