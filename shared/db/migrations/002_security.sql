-- Security core (issue 3): the caller registry of the signed call scheme, the wrapped
-- data keys of field encryption, and the signed checkpoints of the audit chain.

-- Callers of function endpoints (apps, banks, kiosks) and their SM2 public keys. Every
-- row carries mac = HMAC-SM3(callsign-registry-mac-key, canonical row); a row whose MAC
-- fails is refused on load, so an edit outside shared/callsign locks the caller out
-- instead of granting access. routes: "METHOD function /pattern" entries.
CREATE TABLE callsign_apps (
    app_id     text        PRIMARY KEY CHECK (app_id ~ '^[A-Za-z0-9._-]{1,64}$'),
    name       text        NOT NULL,
    kind       text        NOT NULL,
    status     text        NOT NULL CHECK (status IN ('active', 'suspended')),
    routes     text[]      NOT NULL DEFAULT '{}',
    updated_at timestamptz NOT NULL DEFAULT now(),
    mac        bytea       NOT NULL
);

CREATE TABLE callsign_keys (
    app_id     text        NOT NULL REFERENCES callsign_apps (app_id),
    key_id     text        NOT NULL CHECK (key_id ~ '^[A-Za-z0-9._-]{1,64}$'),
    public_key text        NOT NULL,                 -- SM2, PKIX PEM
    not_before timestamptz NOT NULL,
    not_after  timestamptz,                          -- NULL: no expiry
    status     text        NOT NULL CHECK (status IN ('active', 'revoked')),
    updated_at timestamptz NOT NULL DEFAULT now(),
    mac        bytea       NOT NULL,
    PRIMARY KEY (app_id, key_id)
);

-- SM4 data keys of field encryption, each wrapped (SM4-GCM) by one version of the KEK in
-- the pii-kek secret. Rows are never changed except to retire them.
CREATE TABLE pii_data_keys (
    dek_id      text        PRIMARY KEY CHECK (dek_id ~ '^[0-9a-f]{16}$'),
    kek_version integer     NOT NULL CHECK (kek_version > 0),
    wrapped     bytea       NOT NULL,
    created_at  timestamptz NOT NULL,
    retired_at  timestamptz
);
CREATE INDEX pii_data_keys_newest ON pii_data_keys (kek_version, created_at DESC) WHERE retired_at IS NULL;

-- SM2-signed checkpoints of the audit chain: the hash of entry seq, signed with the
-- audit signing key. Append-only like audit_log.
CREATE TABLE audit_checkpoints (
    seq       bigint      PRIMARY KEY,
    hash      bytea       NOT NULL,
    at        timestamptz NOT NULL,
    key_id    text        NOT NULL,
    signature bytea       NOT NULL
);
CREATE FUNCTION audit_checkpoints_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_checkpoints is append-only (% refused)', TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_checkpoints_no_change BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION audit_checkpoints_append_only();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION audit_checkpoints_append_only();

-- Row triggers do not see TRUNCATE; refuse it on the log as well.
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
