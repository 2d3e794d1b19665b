-- wrk script (setup, not measured): exchanges each code of $CODES_FILE once at /token for client
-- $BASIC (ready-made Basic credentials), appending the refresh tokens to $OUT_REFRESH and up to
-- $ACCESS_MAX access tokens to $OUT_ACCESS. Requests beyond the codes go to /readyz and are not
-- recorded. The thread stops, and creates $DONE_FILE, when every code has an answer, or once
-- 100 /readyz answers came after the last code was sent: each connection is sequential, and wrk
-- calls request() once more than it sends, so a count of answers alone may never be reached.
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
local after_last = 0
local access_written = 0

init = function(args)
  refresh_out = io.open(os.getenv("OUT_REFRESH"), "a")
  access_out = io.open(os.getenv("OUT_ACCESS"), "a")
  -- Line by line, so that the caller sees progress (a response lost to a timeout never comes).
  refresh_out:setvbuf("line")
  access_out:setvbuf("line")
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
  elseif sent > #codes and body:find("error", 1, true) == nil then
    after_last = after_last + 1
  elseif status ~= 200 then
    answered = answered + 1
    failures = failures + 1
    if failures == 1 then
      io.stderr:write("token answered ", status, " ", body:sub(1, 200), "\n")
    end
  end
  if answered >= #codes or after_last >= 100 then
    refresh_out:flush()
    access_out:flush()
    wrk.thread:stop()
    -- wrk itself runs its whole -d: tell the caller, which ends it.
    io.open(os.getenv("DONE_FILE"), "w"):close()
  end
end
