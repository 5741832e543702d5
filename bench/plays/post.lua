-- wrk script for bench/plays.sh: every request POSTs a batch of 100 plays
-- with event ids unique across threads, requests and runs. Track ids come
-- from $PLAYS_TRACKS (comma-separated). done() prints one machine-readable
-- line; non2xx counts answers with status >= 400 (never acknowledged).
local tracks = {}
for id in string.gmatch(os.getenv("PLAYS_TRACKS") or "", "[^,]+") do
	tracks[#tracks + 1] = id
end
local batch = tonumber(os.getenv("PLAYS_BATCH") or "100")
local nthreads = 0
local counter = 0
local prefix

function setup(thread)
	nthreads = nthreads + 1
	thread:set("tid", nthreads)
	thread:set("run", os.getenv("PLAYS_RUN") or tostring(os.time()))
end

function init(args)
	prefix = string.format("%s-%d", run, tid)
end

function request()
	counter = counter + 1
	local parts = {}
	for i = 1, batch do
		parts[i] = string.format(
			'{"track_id":"%s","started_at":"2025-06-01T10:%02d:%02dZ","ms_played":%d,' ..
			'"event_id":"%s-%d-%d","location":"Shop %d","zone":"Bar","device":"pi-%d","offline":false}',
			tracks[(i % #tracks) + 1], i % 60, counter % 60, 1000 + i, prefix, counter, i,
			i % 10, i % 4)
	end
	return wrk.format("POST", "/api/v1/plays", {["Content-Type"] = "application/json"},
		"[" .. table.concat(parts, ",") .. "]")
end

function done(summary, latency, requests)
	io.write(string.format(
		"wrk requests=%.0f non2xx=%.0f errors_connect=%.0f errors_read=%.0f errors_write=%.0f" ..
		" errors_timeout=%.0f duration_us=%.0f lat_p50_ms=%.2f lat_p99_ms=%.2f\n",
		summary.requests, summary.errors.status, summary.errors.connect, summary.errors.read,
		summary.errors.write, summary.errors.timeout, summary.duration,
		latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
