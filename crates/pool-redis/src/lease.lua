-- One process's lease on a budget shared through Redis: renews it, grows or shrinks it within the process's
-- fair share, shares throttles, and answers what the process may use. Atomic, as every Redis script is, so two
-- processes never both take the last permit.
--
-- KEYS[1]  hash: process id -> "held:demand:weight:expires_ms"
-- KEYS[2]  hash: the budget's state (created, seq, retry_after, ceiling, throttle_until, recovering_until)
-- ARGV     id, target, floor, demand, weight, capacity, ttl_ms, throttles, retry_after_ms (-1: none),
--          had_lease (0/1), recovery_ms, hold_ms, leaving (0/1), rate_per_s (0: no cap), burst, want_starts
--
-- Reply: { held, share, seq, retry_after_ms, ceiling, recovering, next_expiry_in_ms, processes, starts }

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local id = ARGV[1]
local target = tonumber(ARGV[2])
local floor = tonumber(ARGV[3])
local demand = math.max(1, tonumber(ARGV[4]))
local weight = math.max(1, tonumber(ARGV[5]))
local capacity = tonumber(ARGV[6])
local ttl = tonumber(ARGV[7])
local throttles = tonumber(ARGV[8])
local retry_after = tonumber(ARGV[9])
local had_lease = tonumber(ARGV[10]) == 1
local recovery = math.max(1, tonumber(ARGV[11]))
local hold = tonumber(ARGV[12])
local leaving = tonumber(ARGV[13]) == 1
local rate = tonumber(ARGV[14])
local burst = tonumber(ARGV[15])
local want_starts = tonumber(ARGV[16])

local m = {}
local flat = redis.call('HGETALL', KEYS[2])
for i = 1, #flat, 2 do m[flat[i]] = tonumber(flat[i + 1]) end
if m.created == nil then
  m.created = now
  m.seq = 0
  m.recovering_until = 0
end

-- Every other live process, and what this one holds on record. Records past their expiry are leases of
-- processes that stopped renewing (killed, or cut off): their permits come back here.
local others = {}
local others_held = 0
local mine = nil
local next_expiry = -1
local flat_p = redis.call('HGETALL', KEYS[1])
for i = 1, #flat_p, 2 do
  local pid = flat_p[i]
  local h, d, w, e = string.match(flat_p[i + 1], '^(%d+):(%d+):(%d+):(%d+)$')
  h, d, w, e = tonumber(h), tonumber(d), tonumber(w), tonumber(e)
  if e == nil or e <= now then
    redis.call('HDEL', KEYS[1], pid)
  elseif pid == id then
    mine = h
  else
    table.insert(others, { h, d, w, pid })
    others_held = others_held + h
    if next_expiry < 0 or e < next_expiry then next_expiry = e end
  end
end

-- A process that held a lease finds no record of it, soon after the budget's state was made anew: Redis lost
-- its data (a restart). For one TTL, records are restored at what processes run, and nobody gets more, so
-- the restored leases fit in the budget they fitted in before.
if mine == nil and had_lease and now - m.created < ttl then
  m.recovering_until = math.max(m.recovering_until, m.created + ttl)
end
local recovering = now < m.recovering_until

-- The throttle ceiling: halved (from what is in use) at most once per hold, then grown back to the capacity
-- over `recovery` ms.
local function ceiling_now()
  if m.ceiling == nil then return capacity end
  if now < m.throttle_until then return math.min(capacity, m.ceiling) end
  local grown = m.ceiling + math.floor((now - m.throttle_until) * capacity / recovery)
  if grown >= capacity then
    m.ceiling = nil
    return capacity
  end
  return grown
end

local ceiling = ceiling_now()
if throttles > 0 then
  m.seq = m.seq + throttles
  m.retry_after = retry_after
  if m.throttle_until == nil or now >= m.throttle_until then
    local in_use = others_held + math.max(mine or 0, floor)
    m.ceiling = math.max(1, math.floor(math.min(in_use, ceiling) / 2))
    ceiling = m.ceiling
  end
  local wait = hold
  if retry_after >= 0 then wait = math.max(hold, retry_after) end
  m.throttle_until = math.max(m.throttle_until or 0, now + wait)
end

-- This process's share: the ceiling water-filled by weight over every live process's demand.
local share = 0
if not leaving then
  -- Sorted by id, so that every process computes the same shares and the rounding's permits go to the same
  -- processes whoever asks.
  local members = { { demand, weight, id } }
  for _, o in ipairs(others) do table.insert(members, { math.max(1, o[2]), o[3], o[4] }) end
  table.sort(members, function(a, b) return a[3] < b[3] end)
  local me = 1
  for i = 1, #members do if members[i][3] == id then me = i end end
  local given = {}
  for i = 1, #members do given[i] = 0 end
  local left = ceiling
  local open = {}
  for i = 1, #members do open[i] = i end
  while left > 0 and #open > 0 do
    local weights = 0
    for _, i in ipairs(open) do weights = weights + members[i][2] end
    local capped = false
    local next_open = {}
    for _, i in ipairs(open) do
      local part = math.floor(left * members[i][2] / weights)
      if given[i] + part >= members[i][1] then capped = true end
    end
    if capped then
      local spent = 0
      for _, i in ipairs(open) do
        local part = math.floor(left * members[i][2] / weights)
        if given[i] + part >= members[i][1] then
          spent = spent + (members[i][1] - given[i])
          given[i] = members[i][1]
        else
          table.insert(next_open, i)
        end
      end
      left = left - spent
      open = next_open
    else
      -- Nobody is capped: the weighted parts, then one each of what rounding left, in id order.
      local spent = 0
      for _, i in ipairs(open) do
        local part = math.floor(left * members[i][2] / weights)
        given[i] = given[i] + part
        spent = spent + part
      end
      left = left - spent
      for _, i in ipairs(open) do
        if left == 0 then break end
        if given[i] < members[i][1] then
          given[i] = given[i] + 1
          left = left - 1
        end
      end
      break
    end
  end
  share = given[me]
end

-- The new record: what was asked, within the share and what is free, never below what the process may run
-- now (its floor: permits cannot be taken back from running tasks). While recovering, only restores.
local held = 0
if not leaving then
  local free = math.max(0, ceiling - others_held)
  held = math.min(target, share, free)
  if recovering then held = math.min(held, floor) end
  held = math.max(held, floor)
  redis.call('HSET', KEYS[1], id, held .. ':' .. demand .. ':' .. weight .. ':' .. (now + ttl))
else
  redis.call('HDEL', KEYS[1], id)
end

local state = { 'created', m.created, 'seq', m.seq, 'recovering_until', m.recovering_until }
if m.retry_after ~= nil then table.insert(state, 'retry_after'); table.insert(state, m.retry_after) end
if m.throttle_until ~= nil then table.insert(state, 'throttle_until'); table.insert(state, m.throttle_until) end

-- The cluster-wide start-rate cap, GCRA: `tat` is the theoretical arrival time of the next start; a start is
-- allowed while tat stays within `burst` emission intervals of now. Starts are handed out in blocks, so the
-- process spends them without a round trip each.
local starts = 0
if rate > 0 and want_starts > 0 then
  local interval = 1000 / rate
  local tat = math.max(m.tat or now, now)
  local allowed = math.floor((now + burst * interval - tat) / interval)
  starts = math.max(0, math.min(want_starts, allowed))
  m.tat = tat + starts * interval
end
if m.tat ~= nil then table.insert(state, 'tat'); table.insert(state, string.format('%.3f', m.tat)) end
redis.call('DEL', KEYS[2])
if m.ceiling ~= nil then table.insert(state, 'ceiling'); table.insert(state, m.ceiling) end
redis.call('HSET', KEYS[2], unpack(state))
-- An abandoned budget vanishes on its own.
redis.call('PEXPIRE', KEYS[1], ttl * 20)
redis.call('PEXPIRE', KEYS[2], ttl * 20)

local next_in = -1
if next_expiry >= 0 then next_in = next_expiry - now end
local rec = 0
if recovering then rec = 1 end
return { held, share, m.seq, m.retry_after or -1, ceiling, rec, next_in, #others + 1, starts }
