-- wrk script for bench/search.sh: GET /api/v1/search?q=...&limit=N with
-- queries picked at random from lines FIRST..LAST of a search_gen.py query
-- file (tier<TAB>query<TAB>target).
--
--   SEARCH_QUERIES=q.tsv SEARCH_FIRST=1 SEARCH_LAST=10000 SEARCH_LIMIT=10 \
--   SEARCH_UNIQUE=0 wrk -t1 -c16 -d30s -s bench/search.lua \
--   -H 'Authorization: Bearer KEY' http://127.0.0.1:PORT
--
-- (wrk.format sends wrk's -H headers: chorus wants an API key.)
--
-- SEARCH_UNIQUE=1 adds &_=N, different on every request, so chorus's memo
-- of rendered answers (keyed by request target) never hits.
-- done() prints one line: wrk_result qps=... p50_ms=... p99_ms=... ...

local function urlencode(s)
	return (s:gsub("[^%w%-%._~]", function(c)
		return string.format("%%%02X", string.byte(c))
	end))
end

local path = os.getenv("SEARCH_QUERIES")
local first = tonumber(os.getenv("SEARCH_FIRST") or "1")
local last = tonumber(os.getenv("SEARCH_LAST") or "1000000000")
local limit = os.getenv("SEARCH_LIMIT") or "10"
local unique = os.getenv("SEARCH_UNIQUE") == "1"

local targets = {}
local n = 0
do
	local f = assert(io.open(path, "r"))
	local line_no = 0
	for line in f:lines() do
		line_no = line_no + 1
		if line_no >= first and line_no <= last then
			local q = line:match("^[^\t]*\t([^\t]*)")
			n = n + 1
			targets[n] = "/api/v1/search?q=" .. urlencode(q) .. "&limit=" .. limit
		end
	end
	f:close()
end

local counter = 0
local threads = {}

function setup(thread)
	thread:set("tid", #threads + 1)
	table.insert(threads, thread)
end

function init(args)
	math.randomseed(os.time() * 1000 + (tid or 0) * 7919 + math.floor(os.clock() * 1e6))
end

function request()
	local t = targets[math.random(n)]
	if unique then
		counter = counter + 1
		t = t .. "&_=" .. (tid or 0) .. "-" .. counter
	end
	return wrk.format("GET", t)
end

function done(summary, latency, requests)
	local e = summary.errors
	local secs = summary.duration / 1e6
	io.write(string.format(
		"wrk_result qps=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f requests=%.0f" ..
		" non2xx=%.0f socket_errors=%.0f seconds=%.2f\n",
		summary.requests / secs, latency:percentile(50) / 1000, latency:percentile(90) / 1000,
		latency:percentile(99) / 1000, latency.max / 1000, summary.requests, e.status,
		e.connect + e.read + e.write + e.timeout, secs))
end
