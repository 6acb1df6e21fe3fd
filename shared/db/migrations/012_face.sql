-- face-match: machine pre-checks of submitted card photos and the enrolled card-photo
-- library (one descriptor per person). Descriptors are float32 little-endian vectors; no
-- PII sits beside them, only opaque ids.

-- What the machine saw in a submitted photo, for the photo audit (PhotoSubmitted).
CREATE TABLE face_prechecks (
    application_id text        PRIMARY KEY,
    photo_object   text        NOT NULL,                 -- bucket/key, no PII
    model          text        NOT NULL,
    problem        text,                                 -- quality problem code; NULL = usable
    detail         text,
    score          real,
    eye_distance   real,
    brightness     real,
    vector         bytea,                                -- set when usable
    event_id       text        NOT NULL,
    checked_at     timestamptz NOT NULL,
    CHECK ((problem IS NULL) = (vector IS NOT NULL))
);

-- The library: a person's descriptor of their approved card photo.
CREATE TABLE face_enrolments (
    person_id      text        PRIMARY KEY,
    model          text        NOT NULL,
    vector         bytea       NOT NULL,
    application_id text,
    photo_object   text,
    source         text        NOT NULL,                 -- event id or request id that enrolled it
    enrolled_at    timestamptz NOT NULL
);

-- Every enrolment and removal in order: warm instances load the index snapshot (object
-- storage, models bucket) and apply the changes after the snapshot's seq.
CREATE TABLE face_changes (
    seq       bigserial   PRIMARY KEY,
    person_id text        NOT NULL,
    op        text        NOT NULL CHECK (op IN ('enrol', 'remove')),
    at        timestamptz NOT NULL DEFAULT now()
);
