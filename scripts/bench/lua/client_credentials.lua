-- wrk script: client_credentials grant, client_secret_basic, round-robin over the clients whose
-- ready-made Basic credentials (base64 of urlencoded id ":" urlencoded secret) are in $CC_BASIC.
local dir = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
local lib = dofile(dir .. "/bench_lib.lua")
local basics = lib.words("CC_BASIC")
local n = 0
lib.count_statuses()

request = function()
  n = n + 1
  return wrk.format("POST", "/token", {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Authorization"] = "Basic " .. basics[(n % #basics) + 1],
  }, "grant_type=client_credentials")
end
