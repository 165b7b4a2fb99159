-- download.lua - wrk script: GET a list of paths, each thread walking its own slice.
--
--   wrk ... -s download.lua URL -- PATHS_PREFIX
--
-- Thread n (1-based) reads PATHS_PREFIX.n: one path per line, in the order to request
-- them (a key with 5 uses appears 5 times). Every request takes the next path; past the
-- end the thread starts again from the top and counts a wrap (bench.py then knows the
-- list was too short: those requests hit spent keys). response() is not defined, so wrk
-- neither buffers nor parses response bodies. done() prints one line "BENCH {json}".

local threads = {}
local counter = 0

function setup(thread)
    counter = counter + 1
    thread:set("tid", counter)
    table.insert(threads, thread)
end

function init(args)
    local name = args[1] .. "." .. tid
    local f = assert(io.open(name, "r"))
    reqs = {}
    for line in f:lines() do
        if #line > 0 then
            reqs[#reqs + 1] = wrk.format("GET", line)
        end
    end
    f:close()
    assert(#reqs > 0, "no paths in " .. name)
    idx = 0
    issued = 0
    wraps = 0
end

function request()
    idx = idx + 1
    if idx > #reqs then
        idx = 1
        wraps = wraps + 1
    end
    issued = issued + 1
    return reqs[idx]
end

function done(summary, latency, requests)
    local issued_all, wraps_all = 0, 0
    for _, t in ipairs(threads) do
        issued_all = issued_all + (t:get("issued") or 0)
        wraps_all = wraps_all + (t:get("wraps") or 0)
    end
    local e = summary.errors
    io.write(string.format(
        'BENCH {"duration_us": %d, "requests": %d, "bytes": %d, ' ..
        '"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d, ' ..
        '"p50_us": %d, "p99_us": %d, "max_us": %d, "issued": %d, "wraps": %d}\n',
        summary.duration, summary.requests, summary.bytes,
        e.connect, e.read, e.write, e.status, e.timeout,
        latency:percentile(50), latency:percentile(99), latency.max,
        issued_all, wraps_all))
end
