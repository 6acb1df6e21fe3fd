-- Kiosk registry, identity, events, commands, logs and alerts (issue 18, 001 2.1–2.3,
-- 003 5.2, 004 §3(24)). The kiosks table stays the one source card-apply's kiosk gate
-- reads (registered); registration fills in who the kiosk is and where it stands, and a
-- revocation clears registered in the same transaction as the caller key, so the gate
-- and the kiosk function refuse it at once.

-- A kiosk registered by an administrator has not reported yet: no last-seen state.
ALTER TABLE kiosks ALTER COLUMN last_seen_at DROP NOT NULL;
ALTER TABLE kiosks ALTER COLUMN last_status DROP NOT NULL;
ALTER TABLE kiosks ALTER COLUMN reader_present DROP NOT NULL;
ALTER TABLE kiosks
    ADD COLUMN name          text,
    ADD COLUMN region_code   text CHECK (region_code ~ '^[0-9]{6}$'),
    ADD COLUMN address       text,
    ADD COLUMN model         text,
    ADD COLUMN key_id        text,                      -- the enrolled callsign key (app id = kiosk id)
    ADD COLUMN registered_by text,                      -- admin app id
    ADD COLUMN registered_at timestamptz,
    ADD COLUMN updated_at    timestamptz,
    ADD COLUMN revoked_at    timestamptz,
    ADD COLUMN components    jsonb NOT NULL DEFAULT '{}'::jsonb, -- newest heartbeat's component states
    ADD COLUMN queued_events integer,
    ADD COLUMN paused        boolean NOT NULL DEFAULT false;
CREATE INDEX kiosks_region ON kiosks (region_code text_pattern_ops) WHERE region_code IS NOT NULL;

-- Administrators of the kiosk registry: a signed caller of kind "admin" and its region.
-- mac = HMAC-SM3(callsign-registry-mac-key, canonical row), as the caller registry's rows:
-- a row edited outside shared/kiosk fails its check and the admin is refused.
CREATE TABLE kiosk_admins (
    app_id      text        PRIMARY KEY REFERENCES callsign_apps (app_id),
    region_code text        NOT NULL CHECK (region_code ~ '^[0-9]{6}$'),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    mac         bytea       NOT NULL
);

-- Every event a kiosk posted, deduplicated by (kiosk, event id). Card reads keep the card
-- number only as a blind index; no names are ever stored.
CREATE TABLE kiosk_events (
    kiosk_id    text        NOT NULL,
    event_id    uuid        NOT NULL,
    type        text        NOT NULL,
    at          timestamptz NOT NULL,
    data        jsonb       NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kiosk_id, event_id)
);
CREATE INDEX kiosk_events_by_type ON kiosk_events (kiosk_id, type, at DESC);

-- Remote commands: queued until the kiosk polls (delivered), then done or failed by its
-- report; a queued command past expires_at is expired and never delivered.
CREATE TABLE kiosk_commands (
    command_id   uuid        PRIMARY KEY,
    kiosk_id     text        NOT NULL REFERENCES kiosks (kiosk_id),
    command      text        NOT NULL,
    args         jsonb       NOT NULL DEFAULT '{}'::jsonb,
    status       text        NOT NULL CHECK (status IN ('queued', 'delivered', 'done', 'failed', 'expired')),
    issued_by    text        NOT NULL,
    issued_at    timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    delivered_at timestamptz,
    finished_at  timestamptz,
    detail       text
);
CREATE INDEX kiosk_commands_queue ON kiosk_commands (kiosk_id, issued_at) WHERE status = 'queued';
CREATE INDEX kiosk_commands_by_kiosk ON kiosk_commands (kiosk_id, issued_at DESC);

-- Log files a kiosk uploaded (objects in the kiosk log bucket).
CREATE TABLE kiosk_logs (
    log_id      uuid        PRIMARY KEY,
    kiosk_id    text        NOT NULL REFERENCES kiosks (kiosk_id),
    log_date    date        NOT NULL,
    object_key  text        NOT NULL,
    bytes       bigint      NOT NULL,
    gzip        boolean     NOT NULL,
    uploaded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX kiosk_logs_by_kiosk ON kiosk_logs (kiosk_id, log_date DESC, uploaded_at DESC);

-- Fault episodes: one open row per kiosk and component ("offline" for silence) while the
-- fault lasts; the alert is sent when the row is opened, so one SMS per episode.
CREATE TABLE kiosk_faults (
    kiosk_id  text        NOT NULL REFERENCES kiosks (kiosk_id),
    component text        NOT NULL,
    episode   text        NOT NULL,                    -- the alert's MessageID
    opened_at timestamptz NOT NULL,
    PRIMARY KEY (kiosk_id, component)
);

-- Excel batch registrations and where their failure file lies (bucket reports).
CREATE TABLE kiosk_batches (
    batch_id    uuid        PRIMARY KEY,
    admin_id    text        NOT NULL,
    region_code text        NOT NULL,
    rows        integer     NOT NULL,
    registered  integer     NOT NULL,
    failed      integer     NOT NULL,
    object_key  text,                                  -- failure file; NULL when none failed
    created_at  timestamptz NOT NULL DEFAULT now()
);
