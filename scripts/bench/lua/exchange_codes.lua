-- wrk script (setup, not measured): exchanges each code of $CODES_FILE once at /token for client
-- $BASIC (ready-made Basic credentials), appending the refresh tokens to $OUT_REFRESH and up to
-- $ACCESS_MAX access tokens to $OUT_ACCESS. The thread stops when every code has an answer;
-- requests beyond the codes go to /readyz and are not recorded.
local codes = {}
for line in io.lines(os.getenv("CODES_FILE")) do
  codes[#codes + 1] = line
end
local redirect = os.getenv("REDIRECT_URI")
local auth = "Basic " .. os.getenv("BASIC")
local access_max = tonumber(os.getenv("ACCESS_MAX") or "0")
local refresh_out, access_out = nil, nil
local sent = 0
answered = 0
failures = 0
local access_written = 0

init = function(args)
  refresh_out = io.open(os.getenv("OUT_REFRESH"), "a")
  access_out = io.open(os.getenv("OUT_ACCESS"), "a")
end

request = function()
  sent = sent + 1
  local code = codes[sent]
  if not code then
    return wrk.format("GET", "/readyz")
  end
  return wrk.format("POST", "/token", {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Authorization"] = auth,
  }, "grant_type=authorization_code&code=" .. code .. "&redirect_uri=" .. redirect)
end

response = function(status, headers, body)
  local refresh = body:match('"refresh_token"%s*:%s*"([^"]+)"')
  if refresh then
    refresh_out:write(refresh, "\n")
    answered = answered + 1
    if access_written < access_max then
      access_out:write(body:match('"access_token"%s*:%s*"([^"]+)"'), "\n")
      access_written = access_written + 1
    end
  elseif status ~= 200 then
    answered = answered + 1
    failures = failures + 1
    if failures == 1 then
      io.stderr:write("token answered ", status, " ", body:sub(1, 200), "\n")
    end
  end
  if answered >= #codes then
    refresh_out:flush()
    access_out:flush()
    wrk.thread:stop()
  end
end
