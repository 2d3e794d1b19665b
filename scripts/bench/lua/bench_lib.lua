-- Shared by the wrk scripts of scripts/bench/compare: status counting, client rotation and
-- line files. Each script loads it with dofile(); wrk runs with -t1 (the load generator has one
-- core), and files that must not be reused are also partitioned between threads if -t is higher.
local lib = {}

-- Splits a space-separated environment variable into a list.
function lib.words(name)
  local out = {}
  for word in (os.getenv(name) or ""):gmatch("%S+") do
    out[#out + 1] = word
  end
  if #out == 0 then
    error(name .. " is empty")
  end
  return out
end

-- Reads the lines of a file, keeping those of this thread's share from `offset` on.
function lib.lines(path, offset, tid, nthreads)
  local out = {}
  local i = 0
  for line in io.lines(path) do
    i = i + 1
    if i > offset and (i - offset - 1) % nthreads == tid then
      out[#out + 1] = line
    end
  end
  return out
end

-- Installs setup/response/done that count response statuses and keep the first error body, and
-- prints `STATUS 200=n 400=m …`, `ERROR <status> <body>` and `EXTRA key=value` lines at the end.
-- `extras` names thread globals to sum and report (e.g. used pool entries); `hook(status, body)`,
-- if given, sees every response too.
function lib.count_statuses(extras, hook)
  local threads = {}
  local next_id = 0
  setup = function(thread)
    thread:set("tid", next_id)
    next_id = next_id + 1
    threads[#threads + 1] = thread
  end
  statuses = {}
  first_error = nil
  response = function(status, headers, body)
    statuses[status] = (statuses[status] or 0) + 1
    if status >= 400 and first_error == nil then
      first_error = status .. " " .. string.sub(body or "", 1, 200):gsub("%s+", " ")
    end
    if hook then
      hook(status, body)
    end
  end
  done = function(summary, latency, requests)
    local total = {}
    local error_sample = nil
    local sums = {}
    for _, thread in ipairs(threads) do
      for status, n in pairs(thread:get("statuses") or {}) do
        total[status] = (total[status] or 0) + n
      end
      error_sample = error_sample or thread:get("first_error")
      for _, key in ipairs(extras or {}) do
        sums[key] = (sums[key] or 0) + (thread:get(key) or 0)
      end
    end
    local parts = {}
    for status, n in pairs(total) do
      parts[#parts + 1] = status .. "=" .. n
    end
    table.sort(parts)
    io.write("STATUS " .. table.concat(parts, " ") .. "\n")
    if error_sample then
      io.write("ERROR " .. error_sample .. "\n")
    end
    for _, key in ipairs(extras or {}) do
      io.write("EXTRA " .. key .. "=" .. sums[key] .. "\n")
    end
  end
  return #threads
end

-- wrk's -t, which the scripts cannot see: the caller passes it as $WRK_THREADS (default 1).
function lib.thread_count()
  return tonumber(os.getenv("WRK_THREADS") or "1")
end

return lib
