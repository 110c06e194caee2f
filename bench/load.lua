-- wrk script for bench/run.py: one page under load, as a signed-in customer or as Stripe.
--
-- Environment (set by bench/run.py):
--   BENCH_COOKIE   the Cookie header of a signed-in session (empty for the anonymous anchor)
--   BENCH_EVENTS   a file of signed webhook deliveries, one "signature<TAB>body" a line; when set,
--                  every request POSTs the next one (each thread takes its own share, so no event
--                  id is sent twice unless the file runs out, which is counted as "wrapped")
--   BENCH_THREADS  wrk's -t, so the threads can split BENCH_EVENTS between them
--
-- Every request says it came through a TLS-terminating load balancer (X-Forwarded-Proto: https),
-- which is how the production settings expect to be served. wrk itself only counts 4xx/5xx as
-- errors; response() counts every status outside 2xx, so a redirect to the login page is caught.

local threads = {}

function setup(thread)
  thread:set("index", #threads)
  table.insert(threads, thread)
end

function init(args)
  non2xx = 0
  wrapped = 0
  first_bad = 0
  local cookie = os.getenv("BENCH_COOKIE") or ""
  local headers = { ["X-Forwarded-Proto"] = "https" }
  if cookie ~= "" then
    headers["Cookie"] = cookie
  end
  local events_path = os.getenv("BENCH_EVENTS") or ""
  if events_path == "" then
    for name, value in pairs(headers) do
      wrk.headers[name] = value
    end
    page_request = wrk.format()
    return
  end
  local nthreads = tonumber(os.getenv("BENCH_THREADS") or "1")
  deliveries = {}
  local line_number = 0
  for line in io.lines(events_path) do
    if line_number % nthreads == index then
      local signature, body = line:match("^([^\t]+)\t(.*)$")
      deliveries[#deliveries + 1] = wrk.format("POST", wrk.path, {
        ["Host"] = wrk.headers["Host"],
        ["X-Forwarded-Proto"] = "https",
        ["Content-Type"] = "application/json",
        ["Stripe-Signature"] = signature,
      }, body)
    end
    line_number = line_number + 1
  end
  next_delivery = 0
end

function request()
  if deliveries == nil then
    return page_request
  end
  next_delivery = next_delivery + 1
  if next_delivery > #deliveries then
    next_delivery = 1
    wrapped = wrapped + 1
  end
  return deliveries[next_delivery]
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    if first_bad == 0 then
      first_bad = status
    end
  end
end

function done(summary, latency, requests)
  local bad, wraps, first = 0, 0, 0
  for _, thread in ipairs(threads) do
    bad = bad + thread:get("non2xx")
    wraps = wraps + thread:get("wrapped")
    if first == 0 then
      first = thread:get("first_bad")
    end
  end
  local errors = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests": %d, "duration_us": %d, "non2xx": %d, "first_bad_status": %d, '
      .. '"connect_errors": %d, "read_errors": %d, "write_errors": %d, "timeouts": %d, '
      .. '"p50_us": %d, "p99_us": %d, "mean_us": %.1f, "max_us": %d, "wrapped": %d}\n',
    summary.requests, summary.duration, bad, first,
    errors.connect, errors.read, errors.write, errors.timeout,
    latency:percentile(50), latency:percentile(99), latency.mean, latency.max, wraps
  ))
end
