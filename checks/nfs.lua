-- checks/nfs.lua: NFS client operations per second.
--
-- Reads <proc_root>/net/rpc/nfs, which exists once the kernel's NFS client
-- is loaded; without it the check sends nothing and is not an error. Emits
-- per-second rates computed by the host (ms.rate: none on the first run):
--   nfs.ops                   rate  calls of one operation, tags version=2|3|4
--                                   and op=<name> (read, write, getattr, ...)
--   nfs.rpc.calls             rate  RPC calls of the client, all versions
--   nfs.rpc.retransmissions   rate  RPC calls sent again (server slow or gone)
--   nfs.rpc.auth_refreshes    rate  credentials refreshed
-- An operation never called since the client started (its counter is 0) is
-- not sent, so an NFSv4-only host does not send 40 series of zeros for v2
-- and v3. Operations are named as the kernel lists them (NFSv4: the order
-- of Linux 4.x to 6.x); a position past the known names is sent as op=opN.
--
-- Config keys (checks.nfs in config.yaml):
--   proc_root  where proc is mounted                           (default "/proc")
--   versions   only these NFS versions, e.g. [3, 4]            (default: all)
--   metrics    send only these names, e.g. [nfs.ops]           (default: all)
local U = require "moonstat.checkutil"

local OPS = {
  ["2"] = { "null", "getattr", "setattr", "root", "lookup", "readlink", "read", "wrcache",
            "write", "create", "remove", "rename", "link", "symlink", "mkdir", "rmdir",
            "readdir", "fsstat" },
  ["3"] = { "null", "getattr", "setattr", "lookup", "access", "readlink", "read", "write",
            "create", "mkdir", "symlink", "mknod", "remove", "rmdir", "rename", "link",
            "readdir", "readdirplus", "fsstat", "fsinfo", "pathconf", "commit" },
  ["4"] = { "null", "read", "write", "commit", "open", "open_confirm", "open_noattr",
            "open_downgrade", "close", "setattr", "fsinfo", "renew", "setclientid",
            "setclientid_confirm", "lock", "lockt", "locku", "access", "getattr", "lookup",
            "lookup_root", "remove", "rename", "link", "symlink", "create", "pathconf",
            "statfs", "readlink", "readdir", "server_caps", "delegreturn", "getacl",
            "setacl", "fs_locations", "release_lockowner", "secinfo", "fsid_present",
            "exchange_id", "create_session", "destroy_session", "sequence",
            "get_lease_time", "reclaim_complete", "layoutget", "getdeviceinfo",
            "layoutcommit", "layoutreturn", "secinfo_no_name", "test_stateid",
            "free_stateid", "getdevicelist", "bind_conn_to_session", "destroy_clientid",
            "seek", "allocate", "deallocate", "layoutstats", "clone", "copy",
            "offload_cancel", "lookupp", "layouterror", "copy_notify", "getxattr",
            "setxattr", "listxattrs", "removexattr", "read_plus" },
}

local function collect()
  local cfg = ms.config
  local want = U.wanted(cfg.metrics)
  local versions = U.set_of(cfg.versions)
  local path = cfg.proc_root .. "/net/rpc/nfs"
  local f, err, code = io.open(path, "rb")
  if not f then
    if code == 2 then return end -- ENOENT: no NFS client on this host
    error(err, 0)
  end
  local text = f:read("*a")
  f:close()
  for line in text:gmatch("[^\n]+") do
    local label, rest = line:match("^(%S+)%s+(.*)$")
    local version = label and label:match("^proc(%d+)$")
    if label == "rpc" then
      local calls, retrans, authrefresh = rest:match("^(%d+)%s+(%d+)%s+(%d+)")
      if calls then
        if want("nfs.rpc.calls") then ms.rate("nfs.rpc.calls", tonumber(calls)) end
        if want("nfs.rpc.retransmissions") then
          ms.rate("nfs.rpc.retransmissions", tonumber(retrans))
        end
        if want("nfs.rpc.auth_refreshes") then
          ms.rate("nfs.rpc.auth_refreshes", tonumber(authrefresh))
        end
      end
    elseif version and want("nfs.ops") and (not versions or versions[version]) then
      -- "proc3 22 c0 c1 ... c21": how many counters follow, then the counters
      local names, f = OPS[version] or {}, U.numbers(rest)
      for i = 2, #f do -- counter i - 2 (0-based) is operation names[i - 1]
        if f[i] > 0 then
          ms.rate("nfs.ops", f[i], { version = version, op = names[i - 1] or ("op" .. (i - 2)) })
        end
      end
    end
  end
end

return {
  type = "system",
  defaults = { proc_root = "/proc", versions = false, metrics = false },
  collect = collect,
}
