-- moonstat.resp: a small Redis client (RESP2) over ms.tcp, for checks
-- (checks/redis.lua, checks/dramatiq.lua). Every call yields the check's
-- run like any ms.tcp call; errors come back as nil, err.
--
--   local resp = require "moonstat.resp"
--   local r, err = resp.connect(host, port, { timeout = 5, password = "s", db = 0 })
--   local reply, err = r:call("HLEN", "key")       -- one command
--   local replies, err = r:pipeline({ { "HLEN", "a" }, { "LLEN", "b" } })
--                                                  -- one write, the replies in order
--   r:close()
--
-- Replies: status and bulk strings are strings, integers are numbers,
-- arrays are Lua lists, a null bulk or array is resp.null. In a pipeline an
-- error reply of one command is a table { err = "..." } for which
-- resp.is_error(v) is true, and the others go on; r:call turns it into
-- nil, err. A transport error (closed, timed out) fails the whole call.
local M = {}

M.null = setmetatable({}, { __tostring = function() return "resp.null" end })
local ERR = {}
local MAX_DEPTH = 8

function M.is_error(v)
  return getmetatable(v) == ERR
end

-- The RESP bytes of one command (a list of strings or numbers).
function M.encode(args)
  local parts = { "*" .. #args .. "\r\n" }
  for i = 1, #args do
    local a = tostring(args[i])
    parts[#parts + 1] = "$" .. #a .. "\r\n" .. a .. "\r\n"
  end
  return table.concat(parts)
end

-- Read one reply from sock: the value, or nil, err on a transport or
-- protocol error. Error replies come back as { err = msg } with the ERR
-- metatable.
local function read(sock, depth)
  local line, err = sock:receive("*l")
  if not line then return nil, err end
  local t, rest = line:sub(1, 1), line:sub(2)
  if t == "+" then return rest end
  if t == "-" then return setmetatable({ err = rest }, ERR) end
  if t == ":" then
    local n = tonumber(rest)
    if not n then return nil, "bad integer reply: " .. line end
    return n
  end
  if t == "$" then
    local n = tonumber(rest)
    if not n then return nil, "bad bulk reply: " .. line end
    if n < 0 then return M.null end
    local data, derr = sock:receive(n + 2)
    if not data then return nil, derr end
    return data:sub(1, n)
  end
  if t == "*" then
    local n = tonumber(rest)
    if not n then return nil, "bad array reply: " .. line end
    if n < 0 then return M.null end
    if depth >= MAX_DEPTH then return nil, "array replies nested too deep" end
    local list = {}
    for i = 1, n do
      local v, verr = read(sock, depth + 1)
      if v == nil then return nil, verr end
      list[i] = v
    end
    return list
  end
  return nil, "unexpected reply from the server: " .. line:sub(1, 80)
end

-- resp.read(sock): one reply from anything with sock:receive (tests feed
-- recorded bytes through it).
function M.read(sock)
  return read(sock, 0)
end

local C = {}
C.__index = C

-- Send the commands in one write, then read one reply each. Returns the
-- list of replies (error replies as { err = } tables) or nil, err.
function C:pipeline(cmds)
  local parts = {}
  for i = 1, #cmds do parts[i] = M.encode(cmds[i]) end
  if #parts == 0 then return {} end
  local ok, err = self.sock:send(table.concat(parts))
  if not ok then return nil, err end
  local out = {}
  for i = 1, #cmds do
    local v, rerr = read(self.sock, 0)
    if v == nil then return nil, rerr end
    out[i] = v
  end
  return out
end

-- One command: its reply, or nil, err (an error reply's text as err).
function C:call(...)
  local r, err = self:pipeline({ { ... } })
  if not r then return nil, err end
  if M.is_error(r[1]) then return nil, r[1].err end
  return r[1]
end

function C:close()
  self.sock:close()
end

-- Connect; with opts.password send AUTH, with opts.db (not 0) SELECT.
-- Errors name what failed: "AUTH failed: ...", "SELECT 3 failed: ...".
function M.connect(host, port, opts)
  opts = opts or {}
  local sock, err = ms.tcp(host, port, { timeout = opts.timeout })
  if not sock then return nil, err end
  local r = setmetatable({ sock = sock, where = host .. ":" .. port }, C)
  if opts.password then
    local ok, aerr = r:call("AUTH", opts.password)
    if not ok then
      sock:close()
      return nil, "AUTH failed: " .. tostring(aerr)
    end
  end
  if opts.db and tonumber(opts.db) ~= 0 then
    local ok, serr = r:call("SELECT", opts.db)
    if not ok then
      sock:close()
      return nil, "SELECT " .. tostring(opts.db) .. " failed: " .. tostring(serr)
    end
  end
  return r
end

return M
