-- wrk script for bench/plays.sh: every request POSTs a batch of 100 plays
-- with event ids unique across threads, requests and runs. Tracks come
-- from $PLAYS_TRACKS (comma-separated ID or ID:DURATION_MS; ms_played is
-- at most the duration). started_at is within the hour that ended an hour
-- before the run (the API takes plays of the last 30 days only). The
-- request carries wrk's -H headers (plays.sh sends an admin API key:
-- admins have no per-minute play quota). done() prints one
-- machine-readable line; non2xx counts answers with status >= 400 (never
-- acknowledged).
local tracks, durations = {}, {}
for item in string.gmatch(os.getenv("PLAYS_TRACKS") or "", "[^,]+") do
	local id, ms = string.match(item, "^([^:]+):?(%d*)$")
	tracks[#tracks + 1] = id
	durations[#durations + 1] = tonumber(ms) or math.huge
end
local batch = tonumber(os.getenv("PLAYS_BATCH") or "100")
local nthreads = 0
local counter = 0
local prefix
local headers
local stamps = {}

function setup(thread)
	nthreads = nthreads + 1
	thread:set("tid", nthreads)
	thread:set("run", os.getenv("PLAYS_RUN") or tostring(os.time()))
end

function init(args)
	prefix = string.format("%s-%d", run, tid)
	headers = {}
	for k, v in pairs(wrk.headers) do headers[k] = v end
	headers["Content-Type"] = "application/json"
	-- One stamp per second of the hour: minute i % 60, second counter % 60.
	local hour0 = math.floor(os.time() / 3600) * 3600 - 2 * 3600
	for s = 0, 3599 do
		stamps[s] = os.date("!%Y-%m-%dT%H:%M:%SZ", hour0 + s)
	end
end

function request()
	counter = counter + 1
	local parts = {}
	for i = 1, batch do
		local t = (i % #tracks) + 1
		parts[i] = string.format(
			'{"track_id":"%s","started_at":"%s","ms_played":%d,' ..
			'"event_id":"%s-%d-%d","location":"Shop %d","zone":"Bar","device":"pi-%d","offline":false}',
			tracks[t], stamps[(i % 60) * 60 + counter % 60], math.min(1000 + i, durations[t]),
			prefix, counter, i, i % 10, i % 4)
	end
	return wrk.format("POST", "/api/v1/plays", headers, "[" .. table.concat(parts, ",") .. "]")
end

function done(summary, latency, requests)
	io.write(string.format(
		"wrk requests=%.0f non2xx=%.0f errors_connect=%.0f errors_read=%.0f errors_write=%.0f" ..
		" errors_timeout=%.0f duration_us=%.0f lat_p50_ms=%.2f lat_p99_ms=%.2f\n",
		summary.requests, summary.errors.status, summary.errors.connect, summary.errors.read,
		summary.errors.write, summary.errors.timeout, summary.duration,
		latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
