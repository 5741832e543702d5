-- wrk script of bench/devices.sh: GET $WRK_PATH, each request with the
-- next key of $WRK_KEYS (one a line) as "Authorization: Bearer KEY",
-- round-robin, each thread starting at a different place (the same
-- requests go to nginx, which ignores the header). done() prints the
-- line bench/serve/paths.lua prints:
--   WRK requests=N bytes=N duration_s=S rps=R mbps=M errors_connect=N
--       errors_read=N errors_write=N errors_timeout=N non2xx=N
--       lat_p50_ms=.. lat_p90_ms=.. lat_p99_ms=.. lat_max_ms=.. lat_mean_ms=..
local reqs = {}
local i = 0
local counter = 0

function setup(thread)
	thread:set("tid", counter)
	counter = counter + 1
end

function init(args)
	local path = assert(os.getenv("WRK_PATH"), "WRK_PATH is not set")
	local f = assert(io.open(os.getenv("WRK_KEYS"), "r"))
	for line in f:lines() do
		if #line > 0 then
			reqs[#reqs + 1] = wrk.format("GET", path, {Authorization = "Bearer " .. line})
		end
	end
	f:close()
	assert(#reqs > 0, "no keys in " .. os.getenv("WRK_KEYS"))
	i = math.floor((tonumber(tid) or 0) * #reqs / 2)
end

function request()
	i = i + 1
	return reqs[(i % #reqs) + 1]
end

function done(summary, latency, requests)
	local s = summary.duration / 1e6
	local e = summary.errors
	io.write(string.format(
		"WRK requests=%.0f bytes=%.0f duration_s=%.3f rps=%.1f mbps=%.1f " ..
		"errors_connect=%.0f errors_read=%.0f errors_write=%.0f errors_timeout=%.0f non2xx=%.0f " ..
		"lat_p50_ms=%.2f lat_p90_ms=%.2f lat_p99_ms=%.2f lat_max_ms=%.2f lat_mean_ms=%.2f\n",
		summary.requests, summary.bytes, s, summary.requests / s, summary.bytes / s / 1e6,
		e.connect, e.read, e.write, e.timeout, e.status,
		latency:percentile(50) / 1e3, latency:percentile(90) / 1e3, latency:percentile(99) / 1e3,
		latency.max / 1e3, latency.mean / 1e3))
end
