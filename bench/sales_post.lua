-- wrk script for bench/sales.py: POST /sales/ with a random existing item and store.
--
--   wrk -t1 -c32 -d5s -s bench/sales_post.lua http://127.0.0.1:PORT/sales/ -- I1 I2 S1 S2
--
-- Item ids are drawn from I1..I2 and store ids from S1..S2 (default 1..50 each, what /create/
-- gives on a fresh database); the bench reads the real ranges from /items/ and /stores/. Every answer other than 201 is counted per status, and done() prints one line
--   sales_post: created=N other=M statuses=201:N,400:K
-- so the bench can require "zero non-201" exactly (wrk's own "Non-2xx or 3xx" lets 3xx pass).

local first_item, last_item, first_store, last_store = 1, 50, 1, 50
local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   first_item = tonumber(args[1]) or first_item
   last_item = tonumber(args[2]) or last_item
   first_store = tonumber(args[3]) or first_store
   last_store = tonumber(args[4]) or last_store
   statuses = {}
   math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
   wrk.method = "POST"
   wrk.headers["Content-Type"] = "application/json"
end

function request()
   local body = string.format('{"item_id":%d,"store_id":%d}',
                              math.random(first_item, last_item),
                              math.random(first_store, last_store))
   return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
   statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
   local totals = {}
   for _, thread in ipairs(threads) do
      for status, count in pairs(thread:get("statuses")) do
         totals[status] = (totals[status] or 0) + count
      end
   end
   local created, other, parts = 0, 0, {}
   for status, count in pairs(totals) do
      if status == 201 then created = created + count else other = other + count end
      table.insert(parts, status .. ":" .. count)
   end
   table.sort(parts)
   io.write(string.format("sales_post: created=%d other=%d statuses=%s\n",
                          created, other, table.concat(parts, ",")))
end
