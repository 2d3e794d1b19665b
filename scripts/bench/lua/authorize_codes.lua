-- wrk script (setup, not measured): mints authorization codes through single sign-on. Each
-- request is GET /authorize with the session cookie $COOKIE for client $CLIENT_ID; the code of
-- every 303 is appended to $OUT; once $TARGET codes are written the thread stops and creates
-- $DONE_FILE.
local path = "/authorize?response_type=code&client_id=" .. os.getenv("CLIENT_ID")
  .. "&redirect_uri=" .. os.getenv("REDIRECT_URI") .. "&scope=" .. os.getenv("SCOPE")
  .. "&state=bench"
local headers = { ["Cookie"] = os.getenv("COOKIE") }
local target = tonumber(os.getenv("TARGET"))
local out = nil
written = 0
failures = 0

init = function(args)
  out = io.open(os.getenv("OUT"), "a")
  out:setvbuf("line")
end

request = function()
  return wrk.format("GET", path, headers)
end

response = function(status, headers, body)
  local location = headers["location"] or headers["Location"]
  local code = status == 303 and location and location:match("[?&]code=([^&]+)")
  if code then
    out:write(code, "\n")
    written = written + 1
  else
    failures = failures + 1
    if failures == 1 then
      io.stderr:write("authorize answered ", status, " ", tostring(location), "\n")
    end
  end
  if written >= target or failures > 100 then
    out:flush()
    wrk.thread:stop()
    -- wrk itself runs its whole -d: tell the caller, which ends it.
    io.open(os.getenv("DONE_FILE"), "w"):close()
  end
end
