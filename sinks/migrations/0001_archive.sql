-- 0001_archive: the POSTGRES sink's archive, for reporting in SQL.
--
-- assignments holds one row per lead: the lead's record as it stood after
-- the latest event the sink recorded for it, upserted on every change.
-- lifecycle_events holds one row per event of the workspace's event
-- history, append-only, keyed by the event's id, so a redelivered event
-- writes nothing.
--
-- Personal data: the archive keeps only what reporting needs. Of the lead
-- it copies the source, the company and the country, never the email
-- address, names, postal code or free-form attributes. Event details are
-- the event history's: the store's notes rendered as text, dispositions,
-- and the reasons reps and operators type. A person's erasure deletes
-- their leads' rows (sinks.Archive.Erase, and the lead's `erased` event,
-- see sinks.Archive.Record).
--
-- Times are timestamptz, NULL where the record has none (not contacted,
-- never offered, not closed). Ids the lead does not have (no rep yet, no
-- rule matched) are NULL, not ''.

CREATE TABLE assignments (
    workspace        text        NOT NULL,
    lead_id          text        NOT NULL,
    -- OFFERED, ASSIGNED, QUEUED, UNROUTABLE or CLOSED (engine.State).
    state            text        NOT NULL,
    rep_id           text,                 -- the rep offered or holding the lead
    pool_id          text,                 -- the assigning pool, or the one queued on
    rule_id          text,                 -- NULL when no rule matched
    route            text,                 -- rule, account owner, sticky owner, operator
    config_version   bigint      NOT NULL,
    source           text,
    company          text,
    country          text,                 -- ISO 3166-1 alpha-2
    submitted_at     timestamptz,
    received_at      timestamptz,
    offered_at       timestamptz,          -- the lead's first offer
    accepted_at      timestamptz,          -- accepted by, or assigned to, its holder
    first_contact_at timestamptz,
    closed_at        timestamptz,
    -- first_contact_at - submitted_at in milliseconds; NULL before contact.
    speed_to_lead_ms bigint,
    offers           integer     NOT NULL, -- offers made for the lead
    disposition      text,                 -- QUALIFIED, REJECTED, RECYCLED
    reason_code      text,
    close_reason     text,
    updated_at       timestamptz,          -- the time of the event last applied
    -- The event last applied, "<ms>-<seq>", and its two numbers, which
    -- order events (an older event's redelivery does not roll the row back).
    last_event_id    text        NOT NULL,
    last_event_ms    bigint      NOT NULL,
    last_event_seq   bigint      NOT NULL,
    PRIMARY KEY (workspace, lead_id)
);

CREATE INDEX assignments_submitted ON assignments (workspace, submitted_at);

CREATE TABLE lifecycle_events (
    workspace  text        NOT NULL,
    event_id   text        NOT NULL, -- the Redis stream id, "<ms>-<seq>"
    event_ms   bigint      NOT NULL, -- its numbers, for ordering:
    event_seq  bigint      NOT NULL, -- ORDER BY event_ms, event_seq
    at         timestamptz,
    kind       text        NOT NULL, -- engine.EventKind: offered, accepted, offer_withdrawn, ...
    lead_id    text,                 -- NULL for a rep's events (auto_paused, rep_status_changed)
    rep_id     text,
    pool_id    text,
    detail     text,                 -- rendered as the event history renders it
    PRIMARY KEY (workspace, event_id)
);

CREATE INDEX lifecycle_events_lead ON lifecycle_events (workspace, lead_id);
CREATE INDEX lifecycle_events_at ON lifecycle_events (workspace, at);
