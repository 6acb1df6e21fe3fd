-- Persons: residents known to the platform. Personal data is never stored in clear:
-- *_enc columns hold field ciphertext (shared/pii: SM4-GCM under a wrapped data key,
-- bound to table, column and row), *_index columns hold blind indexes (HMAC-SM3 of the
-- normalised value) for equality lookup.
CREATE TABLE persons (
    person_id       text        PRIMARY KEY,
    id_number_index bytea       NOT NULL UNIQUE,
    id_number_enc   text        NOT NULL,
    name_enc        text        NOT NULL,
    phone_index     bytea,
    phone_enc       text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX persons_phone ON persons (phone_index) WHERE phone_index IS NOT NULL;
