-- wrk script: GET /api/v1/postal-codes/{code} for codes drawn at random from the file named by
-- POSTAL_CODES_FILE (one 7-digit code a line), so lookups are spread over the table.
local codes = {}
local file = assert(io.open(os.getenv("POSTAL_CODES_FILE"), "r"))
for line in file:lines() do
  if #line == 7 then codes[#codes + 1] = line end
end
file:close()
math.randomseed(os.time())

request = function()
  return wrk.format("GET", "/api/v1/postal-codes/" .. codes[math.random(#codes)])
end
