-- lua/bucky/bucky.lua - collectd converters naming values the way
-- bucky's built-in converters did (docs/collectd.md). Load them with
--   listeners: { collectd: { converters: [<moonstat>/lua/bucky] } }
-- A converter file returns a table of collectd plugin name -> function, and
-- an optional `priority` (highest wins per plugin; default 0). A function
-- gets the value v (v.host, v.plugin, v.plugin_instance, v.type,
-- v.type_instance, v.ds, v.value, v.time, v.interval) and returns the name's
-- parts as a list, or nil to drop the value. `_default` is the catch-all.
-- Empty parts are left out; '.' inside a part becomes dot_replacement.

local function host(v)
    return v.host
end

return {
    priority = 0,

    -- host.cpu.0.idle
    cpu = function(v)
        return { host(v), "cpu", v.plugin_instance, v.type_instance }
    end,

    -- host.memory.used
    memory = function(v)
        return { host(v), "memory", v.type_instance }
    end,

    -- host.load.shortterm
    load = function(v)
        return { host(v), "load", v.ds }
    end,

    -- host.interface.eth0.octets.rx (if_octets -> octets)
    interface = function(v)
        local t = v.type:gsub("^if_", "")
        return { host(v), "interface", v.plugin_instance, t, v.ds }
    end,

    -- host.df.root.free
    df = function(v)
        return { host(v), "df", v.plugin_instance, v.type_instance }
    end,
}
