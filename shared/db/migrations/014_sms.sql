-- sms-alert (shared/sms): templates, contact groups, one record per SMS, one row per
-- segment the gateway accepted. Phone numbers and texts are sealed with shared/pii
-- (bound to table, column and row); only the masked number (138****1234) is in clear.

-- Templates with named parameters ({name}); a change is a new version, records keep the
-- version they were sent with.
CREATE TABLE sms_templates (
    code       text        NOT NULL,
    version    int         NOT NULL CHECK (version >= 1),
    body       text        NOT NULL CHECK (body <> ''),
    active     boolean     NOT NULL DEFAULT true,
    created_by text        NOT NULL DEFAULT 'migration',
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (code, version)
);
CREATE UNIQUE INDEX sms_templates_one_active ON sms_templates (code) WHERE active;

-- Contact groups: who gets operational alerts (RecipientRef "group:<name>").
CREATE TABLE sms_contact_groups (
    name        text        PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    description text        NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE sms_group_members (
    group_name   text        NOT NULL REFERENCES sms_contact_groups (name) ON DELETE CASCADE,
    member_id    text        NOT NULL,                 -- opaque staff id
    phone_enc    text        NOT NULL,
    phone_index  bytea       NOT NULL,
    phone_masked text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (group_name, member_id)
);

-- One SMS to one number. (message_id, recipient) is unique for ever: a redelivered event
-- or a rerun with the same message id sends nothing new. recipient is "person:<id>",
-- "group:<name>:<member>" or "phone:<blind index hex>" (codes).
CREATE TABLE sms_messages (
    id               text        PRIMARY KEY,
    message_id       text        NOT NULL,
    recipient        text        NOT NULL,
    template         text        NOT NULL,
    template_version int,
    purpose          text        NOT NULL CHECK (purpose IN ('notice', 'code', 'alert')),
    phone_enc        text,
    phone_masked     text,
    text_enc         text,
    parts            int         NOT NULL DEFAULT 0,
    channel          text,                             -- gateway channel: mobile, telecom, unicom, outprov, fallback
    carrier          text,                             -- protocol: cmpp, smgp, sgip
    status           text        NOT NULL DEFAULT 'queued'
                     CHECK (status IN ('queued', 'submitted', 'delivered', 'failed', 'expired')),
    error            text,
    attempts         int         NOT NULL DEFAULT 0,
    lease_until      timestamptz,
    source_event     text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    submitted_at     timestamptz,
    done_at          timestamptz,
    UNIQUE (message_id, recipient)
);
CREATE INDEX sms_messages_queued ON sms_messages (created_at) WHERE status = 'queued';
CREATE INDEX sms_messages_submitted ON sms_messages (submitted_at) WHERE status = 'submitted';
CREATE INDEX sms_messages_day ON sms_messages (created_at);

-- The gateway's message id of each accepted segment, which delivery reports name.
CREATE TABLE sms_segments (
    channel        text        NOT NULL,
    gateway_msg_id text        NOT NULL,
    sms_id         text        NOT NULL REFERENCES sms_messages (id),
    part           int         NOT NULL,
    stat           text,                              -- carrier word: DELIVRD, UNDELIV, EXPIRED…
    reported_at    timestamptz,
    PRIMARY KEY (channel, gateway_msg_id)
);
CREATE INDEX sms_segments_sms ON sms_segments (sms_id);

INSERT INTO sms_contact_groups (name, description) VALUES
    ('photo-audit-managers', '照片审核管理员：照片审核超期提醒'),
    ('finance-staff', '财务人员：对账差错提醒'),
    ('kiosk-maintainers', '自助终端运维人员：终端故障提醒');

INSERT INTO sms_templates (code, version, body) VALUES
    ('photo_audit_overdue', 1, '有{count}张社保卡照片审核超期，请尽快审核。'),
    ('verification_code', 1, '您的验证码为{code}，{minutes}分钟内有效，请勿告诉他人。'),
    ('card.application.submitted', 1, '您的社保卡申请已受理，我们将尽快审核。'),
    ('card.application.photo_pending_audit', 1, '您的社保卡申请照片已提交，正在审核。'),
    ('card.application.photo_approved', 1, '您的社保卡申请照片已审核通过，即将制卡。'),
    ('card.application.photo_rejected', 1, '您的社保卡申请照片未通过审核，请重新提交照片。'),
    ('card.application.in_production', 1, '您的社保卡已进入制卡环节，制成后将尽快寄出。'),
    ('card.application.mailed', 1, '您的社保卡已由{carrier}寄出，运单号{waybillNo}，请注意查收。'),
    ('card.application.delivered', 1, '您的社保卡已送达，请按提示启用后使用。'),
    ('card.application.activated', 1, '您的社保卡已启用，可正常使用。'),
    ('card.application.withdrawn', 1, '您的社保卡申请已撤销。'),
    ('card.photo.approved', 1, '您提交的社保卡照片已审核通过。'),
    ('card.photo.rejected', 1, '您提交的社保卡照片未通过审核：{reason}。请重新提交照片。'),
    ('card.status.changed', 1, '您的社保卡状态已变更，如非本人操作请立即致电12333。'),
    ('reconcile.discrepancy', 1, '{businessDate}对账发现差错（{kind}），金额{amount}元，流水号{txnRef}，请及时处理。'),
    ('kiosk.fault', 1, '自助终端{kioskId}故障：{fault}，请及时处理。');
