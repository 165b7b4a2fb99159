-- keys.lua - wrk script: POST one multipart body over and over and append the download
-- path of every 201 answer to OUT_PREFIX.n (n = thread number), to prepare keys for the
-- download benchmark. bench.py stops wrk (SIGINT) once enough keys are written.
--
--   wrk ... -s keys.lua URL/upload/ -- BODY_FILE BOUNDARY OUT_PREFIX

local counter = 0

function setup(thread)
    counter = counter + 1
    thread:set("tid", counter)
end

function init(args)
    local f = assert(io.open(args[1], "rb"))
    wrk.method = "POST"
    wrk.body = f:read("*a")
    f:close()
    wrk.headers["Content-Type"] = "multipart/form-data; boundary=" .. args[2]
    out = assert(io.open(args[3] .. "." .. tid, "w"))
end

function response(status, headers, body)
    if status == 201 then
        local key = body:match('"key"%s*:%s*"([%a%-]+)"')
        if key then
            out:write("/download/", key, "\n")
            out:flush()
        end
    end
end
