-- peerbench's bench/wrk.lua (the same WRK_METHOD, WRK_BODY, WRK_HEADERS and the same
-- PEERBENCH_RESULT line) plus a pool of bearer tokens, for P10 (issue #15):
--   OURS_WRK_TOKENS   a file with one access token per line (at least one)
-- Every request presents the next token of its thread's cycle as "Authorization: Bearer <token>"
-- (an Authorization line of WRK_HEADERS, used by peerbench's check request, is replaced), so a
-- token comes back only after the whole pool went by. Threads start at spread-out offsets.
-- peerbench_target.sh runs it through peerbench's own scenario function (HERE=<this folder's
-- parent> scenario ...), whose wrk command line names $HERE/bench/wrk.lua.
wrk.method = os.getenv("WRK_METHOD") or "GET"
local body = os.getenv("WRK_BODY")
if body and body ~= "" then wrk.body = body end
for line in (os.getenv("WRK_HEADERS") or ""):gmatch("[^\n]+") do
  local k, v = line:match("^%s*([^:]+):%s*(.-)%s*$")
  if k and k:lower() ~= "authorization" then wrk.headers[k] = v end
end

local tokens = {}
local path = os.getenv("OURS_WRK_TOKENS")
if path and path ~= "" then
  for line in io.lines(path) do
    if line ~= "" then tokens[#tokens + 1] = line end
  end
end
if #tokens == 0 then error("OURS_WRK_TOKENS names no file of tokens") end

local created = 0
function setup(thread)  -- main state: number the threads
  thread:set("thread_index", created)
  created = created + 1
end

local position = 0
function init(args)  -- thread state: thread_index was set by setup
  position = math.floor((thread_index or 0) * 0.6180339887 * #tokens) % #tokens
end

function request()
  position = position % #tokens + 1
  wrk.headers["Authorization"] = "Bearer " .. tokens[position]
  return wrk.format()
end

done = function(summary, latency, requests)
  local secs = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format("PEERBENCH_RESULT %.2f %.3f %.3f %d %d %d\n",
    summary.requests / secs, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.requests, e.status, e.connect + e.read + e.write + e.timeout))
end
