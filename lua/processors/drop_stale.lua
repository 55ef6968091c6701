-- processors/drop_stale.lua: drop samples whose timestamp is too far from now.
--
-- A sample more than `ahead` in the future or more than `behind` in the past
-- (compared with the time its batch is processed) is dropped; databases
-- would reject it or file it in the wrong place. bucky's timediff example,
-- with the same defaults.
--
--   processors:
--     - drop_stale                          # 2m ahead, 5m behind
--     - drop_stale: { ahead: 10s, behind: 1h }
--
-- Settings: ahead (duration, default 2m), behind (duration, default 5m).
local P = require "moonstat.processor"

return {
  settings = { ahead = "2m", behind = "5m" },
  new = function(settings)
    local ahead = P.duration(settings.ahead, "ahead")
    local behind = P.duration(settings.behind, "behind")
    return function(s)
      local d = s.ts - s.now
      if d > ahead or d < -behind then return nil end
      return s
    end
  end,
}
