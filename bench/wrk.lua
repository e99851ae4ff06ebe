-- wrk script for bench/run: one static request per connection, built once.
--
-- Environment (set by bench/run):
--   PC_BENCH_PATH     request target: "/1k" (origin-form, direct to the
--                     origin) or "http://127.0.0.1:PORT/1k" (absolute-form,
--                     RFC 9112 section 3.2.2, through a proxy)
--   PC_BENCH_HOST     Host header value (the origin's host:port)
--   PC_BENCH_HEADERS  extra headers, "Name: value" separated by "|"
--                     (e.g. "Connection: close" for a connection per request)
--
-- No request()/response() callbacks, so wrk keeps its fast static path.
-- done() prints one "PCBENCH {json}" line that bench/run parses.

wrk.method = "GET"
wrk.path = os.getenv("PC_BENCH_PATH") or "/"
local host = os.getenv("PC_BENCH_HOST")
if host and host ~= "" then
   wrk.headers["Host"] = host
end
local extra = os.getenv("PC_BENCH_HEADERS") or ""
for item in string.gmatch(extra, "[^|]+") do
   local name, value = string.match(item, "^%s*([^:]+):%s*(.-)%s*$")
   if name then
      wrk.headers[name] = value
   end
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'PCBENCH {"duration_us": %d, "requests": %d, "bytes": %d, ' ..
      '"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d, ' ..
      '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f}\n',
      summary.duration, summary.requests, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency.max, latency.mean))
end
