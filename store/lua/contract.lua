-- The contract every script follows (store/contract.go). ARGV[1] is the
-- request: one JSON object, decoded here into A; a script that stores a
-- payload it never reads (lead_decide's record) gets it as ARGV[2]. A reply
-- is {code, value, ...}: code is one of C, and each code means the same in
-- every script. Text for people is rendered in Go, not here.
local A = cjson.decode(ARGV[1])
local C = {
  OK = 0,                -- done; the values are the script's result
  STALE = 1,             -- the config id the caller holds is not current
  DUPLICATE = 2,         -- the lead is recorded already: its record
  NOT_FOUND = 3,         -- no record of the lead
  WRONG_STATE = 4,       -- the lead is not in a state the call acts on: its state
  WRONG_REP = 5,         -- the lead is offered to or held by another rep: rep, state
  MOVED = 6,             -- the lead waits on another pool than the caller read: that pool
  CLAIMED = 7,           -- the timer was fired already, by this or another replica
  CONFLICT = 8,          -- the change contradicts one made before: what was made
  EXPIRED = 9,           -- the rep's offer expired: when, unix ms
  BEFORE_SUBMISSION = 10, -- a contact dated before the lead's submission: the submission, unix ms
  DONE = 11,             -- the step was carried out already: the step due
  INCOMPLETE = 12,       -- the apply's steps are not all carried out: the step due
  QUEUED_POOL = 13,      -- a pool to remove holds queued leads: pool, count
  HELD = 14,             -- another applier holds a live lease
  QUOTA = 15,            -- the workspace holds its quota of records: the count
}
