-- Foundation tables every function shares: the transactional outbox, the processed-event
-- (idempotency) inbox and the append-only audit log.

-- Events waiting to be delivered. producer = the function whose relay delivers the row
-- ("broker" for the local gateway's fan-out); destination = "" for the event sink, or the
-- subscriber function for broker rows.
CREATE TABLE outbox (
    id              bigserial PRIMARY KEY,
    producer        text        NOT NULL,
    destination     text        NOT NULL DEFAULT '',
    event_source    text        NOT NULL,
    event_id        text        NOT NULL,
    event_type      text        NOT NULL,
    event           jsonb       NOT NULL,            -- structured-mode CloudEvent
    created_at      timestamptz NOT NULL DEFAULT now(),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    locked_until    timestamptz,
    delivered_at    timestamptz,
    dead_at         timestamptz,                     -- dead letter: given up, kept for inspection
    last_error      text,
    UNIQUE (producer, destination, event_source, event_id)
);
CREATE INDEX outbox_pending ON outbox (producer, next_attempt_at, id)
    WHERE delivered_at IS NULL AND dead_at IS NULL;
CREATE INDEX outbox_dead ON outbox (producer, dead_at) WHERE dead_at IS NOT NULL;

-- Events a consumer has applied; the key is the CloudEvents identity (source, id).
CREATE TABLE processed_events (
    consumer     text        NOT NULL,
    source       text        NOT NULL,
    id           text        NOT NULL,
    type         text        NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, source, id)
);

-- Who did what to which record, from which channel; never the personal data itself.
-- prev_hash/hash form an SM3 chain and checkpoints carry SM2 signatures (security issue);
-- the columns exist from the start so no entry is ever written outside the chain's shape.
CREATE TABLE audit_log (
    seq         bigserial   PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    actor       text        NOT NULL,               -- operator id, app id, kiosk id, "system"
    channel     text        NOT NULL,               -- h5, outlet, kiosk, bank, admin, schedule, event
    action      text        NOT NULL,
    object_type text        NOT NULL,
    object_id   text        NOT NULL,
    request_id  text,
    detail      jsonb       NOT NULL DEFAULT '{}'::jsonb,
    prev_hash   bytea,
    hash        bytea
);

-- The audit log is append-only for the application role: no UPDATE, no DELETE.
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only (% refused)', TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();

-- Kiosks as the edge-bridge reports them. Registration proper (who may upload photos,
-- 004 §3(24)) belongs to the kiosk capability; heartbeats make a kiosk known.
CREATE TABLE kiosks (
    kiosk_id       text PRIMARY KEY,
    registered     boolean     NOT NULL DEFAULT false,
    first_seen_at  timestamptz NOT NULL DEFAULT now(),
    last_seen_at   timestamptz NOT NULL,
    last_status    text        NOT NULL,
    reader_present boolean     NOT NULL,
    version        text        NOT NULL DEFAULT ''
);

CREATE TABLE kiosk_heartbeats (
    kiosk_id      text        NOT NULL REFERENCES kiosks (kiosk_id),
    at            timestamptz NOT NULL,
    status        text        NOT NULL,
    reader_present boolean    NOT NULL,
    queued_events integer     NOT NULL,
    event_source  text        NOT NULL,
    event_id      text        NOT NULL,
    received_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kiosk_id, at)
);
