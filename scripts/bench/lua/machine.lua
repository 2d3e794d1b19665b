-- wrk script: client_credentials grant of machine accounts: client_id `<user_id>@<institution_code>`,
-- client secret the account's password (Basic), round-robin over the accounts in $MACHINE_BASIC.
local dir = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
local lib = dofile(dir .. "/bench_lib.lua")
local basics = lib.words("MACHINE_BASIC")
local n = 0
lib.count_statuses()

request = function()
  n = n + 1
  return wrk.format("POST", "/token", {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Authorization"] = "Basic " .. basics[(n % #basics) + 1],
  }, "grant_type=client_credentials")
end
