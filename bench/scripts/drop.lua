-- wrk script of `bench drop` (bench/src/drop.rs): one phase of a drop, an exact number of
-- checkout attempts, each a POST with its own buyer token and Idempotency-Key.
--
--   wrk -t T -c C -d LIMIT --latency --timeout 30s -s drop.lua URL -- \
--       TOKENS_FILE PRODUCT_ID FIRST COUNT KEY_TAG DONE_DIR T
--
-- The attempts of a phase are numbered FIRST .. FIRST+COUNT-1 across phases, and attempt n goes
-- to thread n % T. Attempt n is made by the buyer on line (n % #tokens) + 1 of TOKENS_FILE (one
-- access token per line), so consecutive attempts come from different buyers and every buyer
-- comes back every #tokens attempts; its Idempotency-Key is KEY_TAG-n, unique in the whole run.
--
-- wrk calls request() once more than it sends: right after init() of the first thread, on the
-- main OS thread, to check the request's shape. That call is recognised by the OS thread and
-- answered without using an attempt.
--
-- A thread sends exactly its share: once it is sent, request() returns an empty string (wrk
-- writes nothing on that connection), and the thread stops itself when its last response has
-- arrived, after creating DONE_DIR/done-<thread>. wrk's main thread sleeps for the whole -d
-- LIMIT whatever its threads do, so the bench sends wrk SIGINT once every thread's file is there.
-- The elapsed time is therefore measured here, with CLOCK_MONOTONIC through LuaJIT's FFI: from
-- the first request any thread built to the last response any thread received.
--
-- done() prints one line, `DROP-RESULT {json}`, after wrk's own report: the elapsed time, the
-- responses by status and by problem `code`, and the latency distribution as a grid of quantiles.

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } drop_timespec;
int clock_gettime(int clock, drop_timespec *tp);
unsigned long pthread_self(void);
]]
local CLOCK_MONOTONIC = 1
local timespec = ffi.new("drop_timespec")

local function now_us()
    ffi.C.clock_gettime(CLOCK_MONOTONIC, timespec)
    return tonumber(timespec.tv_sec) * 1000000 + math.floor(tonumber(timespec.tv_nsec) / 1000)
end

-- Setup (main Lua state): number the threads.
local threads = {}

function setup(thread)
    thread:set("thread_index", #threads)
    table.insert(threads, thread)
end

-- Running (one Lua state per thread). What done() reads through thread:get() must be global.
local tokens = {}
local thread_count, next_attempt, last_attempt
local key_prefix, head, tail, done_file, init_os_thread
share, sent, received = 0, 0, 0
first_us, last_us = nil, nil
statuses, codes = {}, {}

function init(args)
    local tokens_file, product_id, first, count, tag, done_dir =
        args[1], args[2], tonumber(args[3]), tonumber(args[4]), args[5], args[6]
    thread_count = tonumber(args[7])
    init_os_thread = ffi.C.pthread_self()
    for line in io.lines(tokens_file) do
        tokens[#tokens + 1] = "Authorization: Bearer " .. line .. "\r\n"
    end
    next_attempt = first + thread_index
    last_attempt = first + count
    if next_attempt < last_attempt then
        share = math.floor((last_attempt - 1 - next_attempt) / thread_count) + 1
    end
    local body = '{"items":[{"product_id":' .. product_id .. ',"quantity":1}]}'
    local host = wrk.host
    if wrk.port then
        host = host .. ":" .. wrk.port
    end
    head = "POST " .. wrk.path .. " HTTP/1.1\r\nHost: " .. host .. "\r\n"
    key_prefix = "Idempotency-Key: " .. tag .. "-"
    tail = "\r\nContent-Type: application/json\r\nContent-Length: " .. #body .. "\r\n\r\n" .. body
    done_file = done_dir .. "/done-" .. thread_index
    if share == 0 then
        io.open(done_file, "w"):close()
    end
end

function request()
    if ffi.C.pthread_self() == init_os_thread then
        return head .. key_prefix .. "shape-check" .. tail
    end
    if next_attempt >= last_attempt then
        return ""
    end
    local n = next_attempt
    next_attempt = n + thread_count
    sent = sent + 1
    if first_us == nil then
        first_us = now_us()
    end
    return head .. tokens[(n % #tokens) + 1] .. key_prefix .. n .. tail
end

function response(status, headers, body)
    received = received + 1
    statuses[status] = (statuses[status] or 0) + 1
    if status ~= 201 then
        local code = string.match(body, '"code":"([%w_]+)"') or ("HTTP_" .. status)
        codes[code] = (codes[code] or 0) + 1
    end
    if received == share then
        last_us = now_us()
        io.open(done_file, "w"):close()
        wrk.thread:stop()
    end
end

-- Done (main Lua state again).
local GRID = {}
for p = 0.5, 99.5, 0.5 do
    GRID[#GRID + 1] = p
end
for _, p in ipairs({ 99.6, 99.7, 99.8, 99.9, 99.95, 99.99 }) do
    GRID[#GRID + 1] = p
end

local function json_counts(counts)
    local parts = {}
    for key, count in pairs(counts) do
        parts[#parts + 1] = string.format('"%s":%d', tostring(key), count)
    end
    return "{" .. table.concat(parts, ",") .. "}"
end

function done(summary, latency, requests)
    local all_statuses, all_codes = {}, {}
    local first, last, responses, attempts = nil, nil, 0, 0
    local unfinished = 0
    for _, thread in ipairs(threads) do
        local from, to = thread:get("first_us"), thread:get("last_us")
        if from ~= nil and (first == nil or from < first) then
            first = from
        end
        if to ~= nil and (last == nil or to > last) then
            last = to
        end
        if thread:get("received") ~= thread:get("share") then
            unfinished = unfinished + 1
        end
        responses = responses + thread:get("received")
        attempts = attempts + thread:get("sent")
        for status, count in pairs(thread:get("statuses")) do
            all_statuses[status] = (all_statuses[status] or 0) + count
        end
        for code, count in pairs(thread:get("codes")) do
            all_codes[code] = (all_codes[code] or 0) + count
        end
    end
    local quantiles = {}
    for _, p in ipairs(GRID) do
        quantiles[#quantiles + 1] = string.format("[%s,%d]", p, latency:percentile(p))
    end
    local errors = summary.errors
    print(string.format(
        'DROP-RESULT {"attempts":%d,"responses":%d,"unfinished_threads":%d,"elapsed_us":%d,' ..
        '"statuses":%s,"codes":%s,"latency_us":{"min":%d,"mean":%.1f,"max":%d,"quantiles":[%s]},' ..
        '"errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d}}',
        attempts, responses, unfinished, (last or 0) - (first or 0),
        json_counts(all_statuses), json_counts(all_codes),
        latency.min, latency.mean, latency.max, table.concat(quantiles, ","),
        errors.connect, errors.read, errors.write, errors.timeout))
end
