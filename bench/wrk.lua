-- One wrk script for every scenario of bench/run.sh, driven by environment variables:
--   BENCH_METHOD  GET (default) or POST
--   BENCH_PATH    the path; "{id}" is replaced by a random line of BENCH_IDS per request
--   BENCH_IDS     file of session ids, one a line
--   BENCH_TOKENS  file of JWT access tokens, one a line: a random one per request
--   BENCH_BODY    request body (JSON); "{id}" is replaced like in the path
--   BENCH_NO_CACHE  "1": send Cache-Control: no-cache (the catalog then skips its page cache)
--   BENCH_ETAG    sent as If-None-Match (a 304 counts as a success)
--   BENCH_PAGES   the last page "{page}" may be (from 2)
--   "{hot}" is the first id; "{category}", "{max_price}", "{word}": random values of the lists
--   in BENCH_PLACEHOLDERS (below).
-- At the end it prints one line "STATUS 2xx=.. 201=.. 304=.. 409=.. 4xx=.. 5xx=.." summed over threads

local function read_lines(name)
  local lines = {}
  if name and name ~= "" then
    for line in io.lines(name) do
      if line ~= "" then lines[#lines + 1] = line end
    end
  end
  return lines
end

local method = os.getenv("BENCH_METHOD") or "GET"
local path = os.getenv("BENCH_PATH") or "/"
local body_template = os.getenv("BENCH_BODY")
if body_template == "" then body_template = nil end
local ids = read_lines(os.getenv("BENCH_IDS"))
local tokens = read_lines(os.getenv("BENCH_TOKENS"))
local no_cache = os.getenv("BENCH_NO_CACHE") == "1"
local etag = os.getenv("BENCH_ETAG")
if etag == "" then etag = nil end
local pages = tonumber(os.getenv("BENCH_PAGES") or "2") or 2
-- BENCH_PLACEHOLDERS: "name=v1,v2,...;name=..." (bench/run.sh passes bench/scenarios.py's
-- PLACEHOLDERS, so the lists live in one place).
local choices = {}
for name, values in (os.getenv("BENCH_PLACEHOLDERS") or ""):gmatch("([%w_]+)=([^;]*)") do
  local list = {}
  for value in values:gmatch("[^,]+") do list[#list + 1] = value end
  choices[name] = list
end

local function fill(template, id)
  local filled = template:gsub("{id}", id):gsub("{hot}", ids[1] or "")
  filled = filled:gsub("{page}", function() return tostring(math.random(2, math.max(2, pages))) end)
  filled = filled:gsub("{([%w_]+)}", function(name)
    local list = choices[name]
    if list then return list[math.random(#list)] end
  end)
  return filled
end

local threads = {}
local thread_count = 0

function setup(thread)
  thread_count = thread_count + 1
  thread:set("seed", thread_count)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(os.time() * 1000 + (seed or 0))
  counts = { ok = 0, created = 0, not_modified = 0, conflict = 0, client = 0, server = 0 }
end

request = function()
  local id = #ids > 0 and ids[math.random(#ids)] or ""
  local headers = { ["Accept"] = "application/json" }
  if no_cache then headers["Cache-Control"] = "no-cache" end
  if etag then headers["If-None-Match"] = etag end
  if #tokens > 0 then
    headers["Authorization"] = "Bearer " .. tokens[math.random(#tokens)]
  end
  local body = nil
  if body_template then
    body = body_template:gsub("{id}", id)
    headers["Content-Type"] = "application/json"
  end
  return wrk.format(method, fill(path, id), headers, body)
end

response = function(status, headers, body)
  if status == 201 then counts.created = counts.created + 1 end
  if status == 304 then counts.not_modified = counts.not_modified + 1 end
  if (status >= 200 and status < 300) or status == 304 then counts.ok = counts.ok + 1
  elseif status == 409 then counts.conflict = counts.conflict + 1
  elseif status >= 500 then counts.server = counts.server + 1
  else counts.client = counts.client + 1 end
end

done = function(summary, latency, requests)
  local total = { ok = 0, created = 0, not_modified = 0, conflict = 0, client = 0, server = 0 }
  for _, thread in ipairs(threads) do
    local c = thread:get("counts")
    for key, value in pairs(c) do total[key] = total[key] + value end
  end
  io.write(string.format("STATUS 2xx=%d 201=%d 304=%d 409=%d 4xx=%d 5xx=%d\n",
    total.ok, total.created, total.not_modified, total.conflict, total.client, total.server))
end
