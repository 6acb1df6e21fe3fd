-- Card applications (card-apply, issue 5): the application and its state machine, its
-- history, and the state of the SIMULATED card producer and carrier (EMS), which have no
-- public API. Personal data is never stored in clear: the person is a reference into
-- persons (003), and the application's own personal details (Chinese and English name,
-- the card name split, nationality, ethnicity, phone) are one sealed JSON value
-- (shared/pii, bound to table, column and row). Nothing here depends on cards (004):
-- card-apply reads cards through a query guarded by to_regclass('cards').

CREATE TABLE applications (
    application_id text        PRIMARY KEY,
    person_id      text        NOT NULL REFERENCES persons (person_id),
    channel        text        NOT NULL CHECK (channel IN ('h5', 'outlet', 'kiosk', 'bank', 'employer')),
    kiosk_id       text,
    id_kind        text        NOT NULL,                      -- identity.Kind, not PII
    details_enc    text        NOT NULL,                      -- sealed JSON of the applicant's details
    status         text        NOT NULL CHECK (status IN ('submitted', 'photo_pending_audit', 'photo_approved',
                                   'photo_rejected', 'in_production', 'mailed', 'delivered', 'activated', 'withdrawn')),
    status_since   timestamptz NOT NULL,
    version        bigint      NOT NULL DEFAULT 0,            -- = seq of the newest history row
    photo_object   text,                                      -- photos/ + application.PhotoKey, no PII
    photo_reason   text,                                      -- why the last photo was rejected
    batch_no       text,                                      -- producer's batch
    card_no        text,                                      -- 社保卡号 (AAZ500) once produced, not PII
    waybill_no     text,                                      -- EMS waybill once mailed
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- One person, one open application: the database refuses the second of two concurrent
-- applications whatever the code does. Activated and withdrawn applications are closed
-- (an activated one still blocks a new application through the card-in-use check).
CREATE UNIQUE INDEX applications_one_open ON applications (person_id)
    WHERE status NOT IN ('activated', 'withdrawn');
CREATE INDEX applications_person ON applications (person_id, created_at);
-- What the producer simulation and the progress sweep look for.
CREATE INDEX applications_status ON applications (status, status_since);
CREATE UNIQUE INDEX applications_card_no ON applications (card_no) WHERE card_no IS NOT NULL;

-- Every transition, seq 0 being the submission. Append-only in practice. No PII: actor
-- is an opaque id (person, operator, kiosk, "system"), reason is the operator's text
-- about a photo, waybill the carrier's number.
CREATE TABLE application_history (
    application_id text        NOT NULL REFERENCES applications (application_id),
    seq            bigint      NOT NULL,
    from_status    text,
    to_status      text        NOT NULL,
    action         text        NOT NULL,
    channel        text        NOT NULL,
    actor          text        NOT NULL,
    reason         text        NOT NULL DEFAULT '',
    waybill_no     text,
    at             timestamptz NOT NULL,
    request_id     text,
    event_id       text,
    PRIMARY KEY (application_id, seq)
);

-- Photos stored in object storage for an application, newest last. An object whose
-- upload succeeded but whose transaction did not commit has no row here: the orphan
-- sweep (application.SweepOrphanPhotos) lists the photos bucket and deletes objects
-- with no row once they are older than a grace period.
CREATE TABLE application_photos (
    application_id text        NOT NULL REFERENCES applications (application_id),
    object_key     text        NOT NULL,
    sha256         text        NOT NULL,
    bytes          integer     NOT NULL,
    width          integer     NOT NULL,
    height         integer     NOT NULL,
    kiosk_id       text,
    uploaded_at    timestamptz NOT NULL,
    PRIMARY KEY (application_id, object_key)
);

-- The SIMULATED CARD PRODUCER (制卡厂) and CARRIER (EMS), development and tests only; a
-- real producer keeps its own state. One row per application it has heard of: stage
-- listed (its 申领名单, from ApplicationSubmitted) → in_production (batch, card number) →
-- shipped (waybill) → delivered.
CREATE TABLE sim_card_production (
    application_id text        PRIMARY KEY,
    stage          text        NOT NULL CHECK (stage IN ('listed', 'in_production', 'shipped', 'delivered')),
    batch_no       text,
    card_no        text        UNIQUE,
    waybill_no     text        UNIQUE,
    listed_at      timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL
);
CREATE SEQUENCE sim_card_no_seq;
CREATE SEQUENCE sim_waybill_seq;
