-- wrk script: password sign-ins through the login form, round-robin over $ACCOUNTS
-- ("code:user_id" separated by spaces), all with the password $PASSWORD. The CSRF cookie, its
-- form token and the sealed form state come from one GET /login ($CSRF_COOKIE, $CSRF_TOKEN, $REQ).
local accounts = {}
for entry in string.gmatch(os.getenv("ACCOUNTS"), "%S+") do
  local code, user = string.match(entry, "([^:]+):(.+)")
  accounts[#accounts + 1] = { code = code, user = user }
end
local function escape(s)
  return (string.gsub(s, "[^%w%-_%.~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end
local headers = {
  ["Content-Type"] = "application/x-www-form-urlencoded",
  ["Cookie"] = "sekimori_csrf=" .. os.getenv("CSRF_COOKIE"),
}
local tail = "&csrf_token=" .. escape(os.getenv("CSRF_TOKEN")) .. "&req=" .. escape(os.getenv("REQ"))
  .. "&password=" .. escape(os.getenv("PASSWORD"))
local next_account = 0

request = function()
  next_account = next_account % #accounts + 1
  local a = accounts[next_account]
  return wrk.format("POST", "/login", headers, "institution_code=" .. a.code .. "&user_id=" .. a.user .. tail)
end

-- A successful sign-in answers 303 to /account; anything else is counted as an error.
response = function(status)
  if status ~= 303 then
    wrk.thread:stop()
  end
end
