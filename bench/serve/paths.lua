-- wrk script: GETs the paths listed in the file $WRK_PATHS (one a line),
-- round-robin, each thread starting at a different place, with wrk's -H
-- headers (bench/serve/lib.sh sends chorus an API key); done() prints one
-- machine-readable line:
--   WRK requests=N bytes=N duration_s=S rps=R mbps=M errors_connect=N
--       errors_read=N errors_write=N errors_timeout=N non2xx=N
--       lat_p50_ms=.. lat_p90_ms=.. lat_p99_ms=.. lat_max_ms=.. lat_mean_ms=..
local paths = {}
local i = 0
local counter = 0

function setup(thread)
	thread:set("tid", counter)
	counter = counter + 1
end

function init(args)
	local f = assert(io.open(os.getenv("WRK_PATHS"), "r"))
	for line in f:lines() do
		if #line > 0 then paths[#paths + 1] = line end
	end
	f:close()
	assert(#paths > 0, "no paths in " .. os.getenv("WRK_PATHS"))
	i = (tonumber(tid) or 0) * 7
end

function request()
	i = i + 1
	return wrk.format("GET", paths[(i % #paths) + 1])
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
