-- Argo CD health check for persistentchat.io/PersistentChatPool.
-- Install it as resource.customizations.health.persistentchat.io_PersistentChatPool in argocd-cm
-- (docs/operations.md). Argo CD runs it with gopher-lua (Lua 5.1) and the object as `obj`.
--
-- The operator's conditions follow kstatus (Ready, Reconciling, Stalled) plus Protected and
-- Degraded. Precedence, first match wins:
--   Suspended    spec.suspend is true (the operator observes only)
--   Progressing  no status yet, or status.observedGeneration < metadata.generation (stale)
--   Degraded     Stalled=True (a person must act: invalid spec, blocked decision, fatal step)
--   Degraded     Reconciling=True because a step failed and is being retried (StepRetrying):
--                shown, with the SQL error, while the operator keeps retrying
--   Progressing  Reconciling=True (a step, a drain, a wait on something that clears by itself)
--   Degraded     Degraded=True while nothing is under way (e.g. restore latency above the RPO)
--   Healthy      Ready=True
--   Progressing  otherwise
-- A transition always has Degraded=True (mirroring is removed during a switch), so Degraded
-- must not win over Reconciling: a switch is Progressing, not Degraded.

local hs = {}

local function condition(status, ctype)
  if status == nil or status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == ctype then
      return c
    end
  end
  return nil
end

local function is_true(status, ctype)
  local c = condition(status, ctype)
  return c ~= nil and c.status == "True"
end

local function message_of(status, ctype, fallback)
  local c = condition(status, ctype)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    return c.message
  end
  return fallback
end

local spec = obj.spec or {}
local status = obj.status
local generation = (obj.metadata or {}).generation

if spec.suspend == true then
  hs.status = "Suspended"
  hs.message = "spec.suspend is true: the operator observes only and sends no statement"
  if status ~= nil and status.phase ~= nil then
    hs.message = hs.message .. " (phase " .. status.phase .. ")"
  end
  return hs
end

if status == nil or status.conditions == nil or #status.conditions == 0 then
  hs.status = "Progressing"
  hs.message = "waiting for the operator's first status"
  return hs
end

if generation ~= nil and (status.observedGeneration == nil or status.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "status describes generation " .. tostring(status.observedGeneration or "none") ..
    ", the spec is at generation " .. tostring(generation) .. ": waiting for the operator"
  return hs
end

if is_true(status, "Stalled") then
  hs.status = "Degraded"
  hs.message = message_of(status, "Stalled", "Stalled")
  return hs
end

local reconciling = condition(status, "Reconciling")
if reconciling ~= nil and reconciling.status == "True" then
  if reconciling.reason == "StepRetrying" then
    hs.status = "Degraded"
  else
    hs.status = "Progressing"
  end
  hs.message = message_of(status, "Reconciling", status.phase or "Reconciling")
  return hs
end

if is_true(status, "Degraded") then
  hs.status = "Degraded"
  hs.message = message_of(status, "Degraded", "Degraded")
  return hs
end

if is_true(status, "Ready") then
  hs.status = "Healthy"
  hs.message = message_of(status, "Ready", "Ready")
  return hs
end

hs.status = "Progressing"
hs.message = message_of(status, "Ready", status.phase or "not ready yet")
return hs
