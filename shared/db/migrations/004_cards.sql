-- Cards and their status (loss-report, issue 5): loss, unlock, cancel with history, the
-- versioned blacklist that offline kiosks and merchants sync, and the bank sync (our
-- acknowledgements plus the state of the built-in simulated bank).

-- One row per issued card. status is ours (shared/card); the province's code for it
-- (AAZ502) is configuration, not data. temp_loss_expires_at is set exactly while the card
-- is under temporary loss; version counts status changes (= seq of the newest history
-- row); blacklist_version is the blacklist version of the newest change.
CREATE TABLE cards (
    card_id              text        PRIMARY KEY,
    card_no              text        NOT NULL UNIQUE,            -- 社保卡号 (AAZ500), not PII
    person_id            text        REFERENCES persons (person_id),
    status               text        NOT NULL
                         CHECK (status IN ('normal', 'temporary_loss', 'formal_loss', 'cancelled')),
    status_since         timestamptz NOT NULL,
    temp_loss_expires_at timestamptz,
    version              bigint      NOT NULL DEFAULT 0,
    blacklist_version    bigint,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    CHECK ((status = 'temporary_loss') = (temp_loss_expires_at IS NOT NULL))
);
-- What the lapse job (and lazy lapse on read) looks for.
CREATE INDEX cards_temp_loss_due ON cards (temp_loss_expires_at) WHERE status = 'temporary_loss';
CREATE INDEX cards_person ON cards (person_id) WHERE person_id IS NOT NULL;

-- Every status change of a card, seq 0 being its issue. Append-only in practice.
CREATE TABLE card_status_history (
    card_id           text        NOT NULL REFERENCES cards (card_id),
    seq               bigint      NOT NULL,
    from_status       text,                                      -- NULL for the issue row
    to_status         text        NOT NULL,
    action            text        NOT NULL,
    channel           text        NOT NULL,
    reason            text        NOT NULL,
    actor             text        NOT NULL,
    identity_verified boolean     NOT NULL DEFAULT false,
    at                timestamptz NOT NULL,
    request_id        text,
    blacklist_version bigint,
    event_id          text,
    PRIMARY KEY (card_id, seq)
);

-- The blacklist version counter. Every status change takes this row's lock to get the
-- next version, so versions commit in order: a reader that has seen version N has seen
-- every change up to N (a sequence would hand out numbers that commit out of order, and a
-- delta reader could skip one for good). compacted_through: changes up to this version
-- have been deleted; a caller whose "since" is older must take a snapshot.
CREATE TABLE blacklist_meta (
    id                boolean PRIMARY KEY DEFAULT true CHECK (id),
    version           bigint  NOT NULL DEFAULT 0,
    compacted_through bigint  NOT NULL DEFAULT 0
);
INSERT INTO blacklist_meta DEFAULT VALUES;

-- One row per blacklist version: card card_no was added (lost, cancelled) or removed
-- (unlocked, lapsed). status is the card's status after the change.
CREATE TABLE blacklist_changes (
    version bigint      PRIMARY KEY,
    card_id text        NOT NULL,
    card_no text        NOT NULL,
    op      text        NOT NULL CHECK (op IN ('add', 'remove')),
    status  text        NOT NULL,
    at      timestamptz NOT NULL
);
CREATE INDEX blacklist_changes_at ON blacklist_changes (at);

-- The cards listed now (what a snapshot returns), kept in the same transaction as the
-- changes.
CREATE TABLE blacklist_entries (
    card_no text        PRIMARY KEY,
    card_id text        NOT NULL,
    status  text        NOT NULL,
    version bigint      NOT NULL,                                -- version that listed it (last add)
    since   timestamptz NOT NULL
);

-- Our record of the banks' acknowledgements of status changes (one per bank and event).
CREATE TABLE bank_sync_acks (
    bank              text        NOT NULL,
    event_source      text        NOT NULL,
    event_id          text        NOT NULL,
    card_id           text        NOT NULL,
    status_code       text        NOT NULL,
    blacklist_version bigint      NOT NULL,
    ack_ref           text        NOT NULL,
    acked_at          timestamptz NOT NULL,
    PRIMARY KEY (bank, event_source, event_id)
);
CREATE INDEX bank_sync_acks_card ON bank_sync_acks (card_id, blacklist_version);

-- The SIMULATED BANK's own state (development and tests; a real bank keeps its own).
-- control.failing makes it refuse every call (counted in refused) until cleared.
CREATE TABLE bank_sim_control (
    bank    text    PRIMARY KEY,
    failing boolean NOT NULL DEFAULT false,
    refused bigint  NOT NULL DEFAULT 0
);
INSERT INTO bank_sim_control (bank) VALUES ('simulated');

-- Requests it accepted, keyed by the caller's request id (the event id): a repeated
-- request is acknowledged again with the same reference and changes nothing.
CREATE TABLE bank_sim_requests (
    request_id        text        PRIMARY KEY,
    card_no           text        NOT NULL,
    status_code       text        NOT NULL,
    blacklist_version bigint      NOT NULL,
    ack_ref           text        NOT NULL,
    received_at       timestamptz NOT NULL,
    deliveries        integer     NOT NULL DEFAULT 1
);
CREATE INDEX bank_sim_requests_card ON bank_sim_requests (card_no);

-- The card status as the bank knows it: the newest change wins (by blacklist version),
-- so changes that arrive out of order do not roll it back.
CREATE TABLE bank_sim_cards (
    card_no           text        PRIMARY KEY,
    status_code       text        NOT NULL,
    blacklist_version bigint      NOT NULL,
    updated_at        timestamptz NOT NULL
);
