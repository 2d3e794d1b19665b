-- wrk script: posts each authorization code from $CODES_FILE once to /token.
-- Codes are single use, so the run must not outlast the file (the summary reports non-2xx).
local codes = {}
for line in io.lines(os.getenv("CODES_FILE")) do
  codes[#codes + 1] = line
end
local next_code = 0
local auth = os.getenv("BASIC_AUTH")
local redirect = os.getenv("REDIRECT_URI")
local verifier = os.getenv("VERIFIER")

request = function()
  next_code = next_code + 1
  local code = codes[next_code] or "exhausted"
  local body = "grant_type=authorization_code&code=" .. code
    .. "&redirect_uri=" .. redirect .. "&code_verifier=" .. verifier
  return wrk.format("POST", "/token", {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Authorization"] = "Basic " .. auth,
  }, body)
end
