-- Photo-audit overdue alert (photo-audit-alert, issue 17; 004 §3(22),(23)).

-- The working-day calendar: the exceptions to "Monday to Friday work". A holiday is a day
-- off (法定节假日, and the days a holiday block covers); a workday is a Saturday or Sunday
-- worked to make up for one (调休上班). Administrators maintain it over signed HTTP
-- (PUT/DELETE /function/photo-audit-alert/calendar/{date}); shared/workday reasons over it.
CREATE TABLE workday_calendar (
    day        date        PRIMARY KEY,                      -- China-time calendar date
    kind       text        NOT NULL CHECK (kind IN ('holiday', 'workday')),
    name       text        NOT NULL DEFAULT '' CHECK (octet_length(name) <= 64),
    updated_by text        NOT NULL DEFAULT 'seed',          -- caller app id, or "seed" for the rows below
    updated_at timestamptz NOT NULL DEFAULT now(),
    -- A make-up working day on a weekday would change nothing: it is a typo.
    CHECK (kind = 'holiday' OR extract(isodow FROM day) IN (6, 7))
);

-- DATA TO MAINTAIN, not code: the State Council's arrangements (国务院办公厅关于20xx年部分
-- 节假日安排的通知) for 2025 and 2026. Every November an administrator adds the next year
-- the same way (the function warns when a run falls in a year with no entry). Each holiday
-- block lists all its days, weekend ones included.
INSERT INTO workday_calendar (day, kind, name) VALUES
    -- 2025
    ('2025-01-01', 'holiday', '元旦'),
    ('2025-01-26', 'workday', '春节调休'),
    ('2025-01-28', 'holiday', '春节'),
    ('2025-01-29', 'holiday', '春节'),
    ('2025-01-30', 'holiday', '春节'),
    ('2025-01-31', 'holiday', '春节'),
    ('2025-02-01', 'holiday', '春节'),
    ('2025-02-02', 'holiday', '春节'),
    ('2025-02-03', 'holiday', '春节'),
    ('2025-02-04', 'holiday', '春节'),
    ('2025-02-08', 'workday', '春节调休'),
    ('2025-04-04', 'holiday', '清明节'),
    ('2025-04-05', 'holiday', '清明节'),
    ('2025-04-06', 'holiday', '清明节'),
    ('2025-04-27', 'workday', '劳动节调休'),
    ('2025-05-01', 'holiday', '劳动节'),
    ('2025-05-02', 'holiday', '劳动节'),
    ('2025-05-03', 'holiday', '劳动节'),
    ('2025-05-04', 'holiday', '劳动节'),
    ('2025-05-05', 'holiday', '劳动节'),
    ('2025-05-31', 'holiday', '端午节'),
    ('2025-06-01', 'holiday', '端午节'),
    ('2025-06-02', 'holiday', '端午节'),
    ('2025-09-28', 'workday', '国庆节调休'),
    ('2025-10-01', 'holiday', '国庆节、中秋节'),
    ('2025-10-02', 'holiday', '国庆节、中秋节'),
    ('2025-10-03', 'holiday', '国庆节、中秋节'),
    ('2025-10-04', 'holiday', '国庆节、中秋节'),
    ('2025-10-05', 'holiday', '国庆节、中秋节'),
    ('2025-10-06', 'holiday', '国庆节、中秋节'),
    ('2025-10-07', 'holiday', '国庆节、中秋节'),
    ('2025-10-08', 'holiday', '国庆节、中秋节'),
    ('2025-10-11', 'workday', '国庆节调休'),
    -- 2026
    ('2026-01-01', 'holiday', '元旦'),
    ('2026-01-02', 'holiday', '元旦'),
    ('2026-01-03', 'holiday', '元旦'),
    ('2026-01-04', 'workday', '元旦调休'),
    ('2026-02-14', 'workday', '春节调休'),
    ('2026-02-15', 'holiday', '春节'),
    ('2026-02-16', 'holiday', '春节'),
    ('2026-02-17', 'holiday', '春节'),
    ('2026-02-18', 'holiday', '春节'),
    ('2026-02-19', 'holiday', '春节'),
    ('2026-02-20', 'holiday', '春节'),
    ('2026-02-21', 'holiday', '春节'),
    ('2026-02-22', 'holiday', '春节'),
    ('2026-02-23', 'holiday', '春节'),
    ('2026-02-28', 'workday', '春节调休'),
    ('2026-04-04', 'holiday', '清明节'),
    ('2026-04-05', 'holiday', '清明节'),
    ('2026-04-06', 'holiday', '清明节'),
    ('2026-05-01', 'holiday', '劳动节'),
    ('2026-05-02', 'holiday', '劳动节'),
    ('2026-05-03', 'holiday', '劳动节'),
    ('2026-05-04', 'holiday', '劳动节'),
    ('2026-05-05', 'holiday', '劳动节'),
    ('2026-05-09', 'workday', '劳动节调休'),
    ('2026-06-19', 'holiday', '端午节'),
    ('2026-06-20', 'holiday', '端午节'),
    ('2026-06-21', 'holiday', '端午节'),
    ('2026-09-20', 'workday', '国庆节调休'),
    ('2026-09-25', 'holiday', '中秋节'),
    ('2026-09-26', 'holiday', '中秋节'),
    ('2026-09-27', 'holiday', '中秋节'),
    ('2026-10-01', 'holiday', '国庆节'),
    ('2026-10-02', 'holiday', '国庆节'),
    ('2026-10-03', 'holiday', '国庆节'),
    ('2026-10-04', 'holiday', '国庆节'),
    ('2026-10-05', 'holiday', '国庆节'),
    ('2026-10-06', 'holiday', '国庆节'),
    ('2026-10-07', 'holiday', '国庆节'),
    ('2026-10-10', 'workday', '国庆节调休');

-- The audit clock of each application's photo, fed by PhotoSubmitted (start) and
-- PhotoAudited (stop) through the inbox. A re-submitted photo (after a rejection) restarts
-- it. card-apply records no audit provider, so provider is derived at PhotoSubmitted from
-- configuration (photo_audit_provider, photo_audit_providers by channel). No PII: the
-- export joins applications and persons and decrypts there.
CREATE TABLE photo_audit_clock (
    application_id text        PRIMARY KEY,
    provider       text,                                     -- NULL only while an audit arrived before its submission
    channel        text,
    submitted_at   timestamptz,                              -- newest photo's submission; NULL as for provider
    audited_at     timestamptz,                              -- NULL while the newest photo awaits audit
    result         text CHECK (result IN ('approved', 'rejected')),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
-- The overdue count is one range scan: pending photos submitted before the cutoff instant
-- (shared/workday Cutoff), grouped by the included provider, index-only. Audited photos
-- (the vast majority of 10M) are not in the index at all.
CREATE INDEX photo_audit_pending ON photo_audit_clock (submitted_at) INCLUDE (provider)
    WHERE audited_at IS NULL AND submitted_at IS NOT NULL;

-- One row per China-time day the scheduled alert ran: a rerun that day finds it and sends
-- nothing new. message_id is the SMSRequested id (NULL when nothing was overdue).
CREATE TABLE photo_audit_runs (
    run_date   date        PRIMARY KEY,
    overdue    integer     NOT NULL CHECK (overdue >= 0),
    message_id text,
    ran_at     timestamptz NOT NULL DEFAULT now()
);
