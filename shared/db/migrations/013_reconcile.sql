-- Reconciliation (issue 16): the payment ledger the platform keeps, and the runs of the
-- daily reconciliation with their summaries, discrepancies, refunds and notices.

-- One row per payment or refund the platform took through a payment channel. txn_no is
-- the merchant order number we sent the channel (payments) or the merchant refund number
-- (refunds): the statements name them, so they are the match key. biz_date is the China
-- date of paid_at, the date the channel's bill lists the row under.
CREATE TABLE payment_ledger (
    channel     text        NOT NULL CHECK (channel IN ('wechat', 'alipay', 'unionpay')),
    txn_no      text        NOT NULL CHECK (txn_no ~ '^[A-Za-z0-9_-]{1,64}$'),
    merchant_id text        NOT NULL DEFAULT '' CHECK (merchant_id ~ '^[A-Za-z0-9_-]{0,32}$'),
    kind        text        NOT NULL CHECK (kind IN ('pay', 'refund')),
    order_no    text,                                   -- refunds: the order refunded
    amount_fen  bigint      NOT NULL CHECK (amount_fen >= 0),
    status      text        NOT NULL CHECK (status IN ('success', 'closed', 'processing', 'failed', 'refunded')),
    paid_at     timestamptz NOT NULL,
    biz_date    date        NOT NULL,
    PRIMARY KEY (channel, txn_no)
);
-- A run streams one (channel, date) out in one index range.
CREATE INDEX payment_ledger_day ON payment_ledger (channel, biz_date);

-- One row per attempt at reconciling a (channel, date); never rewritten after it ends.
-- A rerun is a new attempt; the newest succeeded attempt is current (recon_current) and
-- the one it replaced is marked superseded. A run left 'running' by a killed instance is
-- marked failed by the next attempt, which holds the (channel, date) lock.
CREATE TABLE recon_runs (
    run_id       text        PRIMARY KEY,
    channel      text        NOT NULL,
    biz_date     date        NOT NULL,
    attempt      integer     NOT NULL,
    status       text        NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'superseded')),
    trigger      text        NOT NULL CHECK (trigger IN ('schedule', 'ping', 'manual')),
    requested_by text        NOT NULL,
    three_way    boolean     NOT NULL DEFAULT false,
    controls_ok  boolean,                               -- every file's totals and digest agreed
    manifest     jsonb,                                 -- inputs: object keys, sizes, digests, parse reports
    totals       jsonb,                                 -- control totals of each side
    discrepancies integer,
    report_xlsx  text,
    report_csv   text,
    error        text,
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    UNIQUE (channel, biz_date, attempt)
);
CREATE INDEX recon_runs_day ON recon_runs (biz_date DESC, channel);

CREATE TABLE recon_current (
    channel  text NOT NULL,
    biz_date date NOT NULL,
    run_id   text NOT NULL REFERENCES recon_runs (run_id),
    PRIMARY KEY (channel, biz_date)
);

-- Counts and fen sums by merchant and class (matched included), per run.
CREATE TABLE recon_summary (
    run_id   text   NOT NULL REFERENCES recon_runs (run_id),
    merchant text   NOT NULL,
    class    text   NOT NULL,
    count    bigint NOT NULL,
    fen      bigint NOT NULL,
    PRIMARY KEY (run_id, merchant, class)
);

-- The discrepancies of a run (never the matched rows). seq is the row's place in the
-- run's one deterministic order (class, key, side, line), so reruns list alike.
CREATE TABLE recon_discrepancies (
    run_id          text    NOT NULL REFERENCES recon_runs (run_id),
    seq             integer NOT NULL,
    class           text    NOT NULL,
    side            text    NOT NULL,
    txn_key         text    NOT NULL,
    merchant        text    NOT NULL,
    kind            text    NOT NULL,
    platform_fen    bigint  NOT NULL,
    channel_fen     bigint  NOT NULL,
    his_fen         bigint  NOT NULL,
    platform_status text    NOT NULL,
    channel_status  text    NOT NULL,
    fen             bigint  NOT NULL,
    txn_time        timestamptz,
    line            bigint  NOT NULL,
    PRIMARY KEY (run_id, seq)
);
CREATE INDEX recon_discrepancies_class ON recon_discrepancies (run_id, class, seq);

-- A discrepancy is announced (DiscrepancyFound) once per identity, whatever the reruns.
CREATE TABLE recon_notices (
    channel      text        NOT NULL,
    biz_date     date        NOT NULL,
    class        text        NOT NULL,
    txn_key      text        NOT NULL,
    first_run_id text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (channel, biz_date, class, txn_key)
);

-- Refunds of money taken with no HIS settlement. refund_no derives from the
-- discrepancy's identity (channel, key), so a rerun finds the same number and adds none.
CREATE TABLE recon_refunds (
    refund_no      text        PRIMARY KEY,
    channel        text        NOT NULL,
    biz_date       date        NOT NULL,
    txn_key        text        NOT NULL,
    merchant       text        NOT NULL,
    amount_fen     bigint      NOT NULL CHECK (amount_fen > 0),
    status         text        NOT NULL CHECK (status IN ('requested', 'approved', 'rejected', 'succeeded', 'failed')),
    first_run_id   text        NOT NULL,
    decided_by     text,
    decided_at     timestamptz,
    channel_answer jsonb,
    closed_at      timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (channel, txn_key)
);
CREATE INDEX recon_refunds_open ON recon_refunds (status, created_at) WHERE status IN ('requested', 'approved');

-- The simulated payment channel's own refund book: idempotent on the refund number, as
-- WeChat Pay, Alipay and UnionPay are on the merchant refund number.
CREATE TABLE recon_sim_channel_refunds (
    refund_no   text        PRIMARY KEY,
    channel     text        NOT NULL,
    txn_key     text        NOT NULL,
    amount_fen  bigint      NOT NULL,
    channel_ref text        NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    deliveries  integer     NOT NULL DEFAULT 1
);
CREATE TABLE recon_sim_channel_control (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    failing   boolean NOT NULL DEFAULT false
);
INSERT INTO recon_sim_channel_control DEFAULT VALUES;
