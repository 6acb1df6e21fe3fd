-- Group-commit audit chain (issue 5 speed): an entry is written unsealed inside the
-- business transaction that it records, without any lock, and one sealer at a time links
-- committed entries into the chain: chain position pos, prev_hash, hash. Before this,
-- every writer held a global lock from its append to its commit, so all audited changes
-- ran one at a time. Verification walks the chain by pos; seq stays the insertion id.

-- The only change the log accepts: sealing an unsealed entry once, touching nothing but
-- pos, prev_hash and hash.
CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND OLD.pos IS NULL AND OLD.prev_hash IS NULL AND OLD.hash IS NULL
       AND NEW.pos IS NOT NULL AND NEW.prev_hash IS NOT NULL AND NEW.hash IS NOT NULL
       AND (NEW.seq, NEW.at, NEW.actor, NEW.channel, NEW.action, NEW.object_type, NEW.object_id,
            NEW.request_id, NEW.detail) IS NOT DISTINCT FROM
           (OLD.seq, OLD.at, OLD.actor, OLD.channel, OLD.action, OLD.object_type, OLD.object_id,
            OLD.request_id, OLD.detail) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit_log is append-only (% refused)', TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;

ALTER TABLE audit_log ADD COLUMN pos bigint UNIQUE;
-- Entries chained before this migration keep their order: position = seq (the checkpoints
-- already name them by seq, and their hashes do not cover the position).
ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_change;
UPDATE audit_log SET pos = seq WHERE hash IS NOT NULL;
ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_change;

ALTER TABLE audit_log ADD CONSTRAINT audit_log_sealed_whole
    CHECK ((pos IS NULL) = (hash IS NULL) AND (pos IS NULL) = (prev_hash IS NULL));

-- What the sealer looks for.
CREATE INDEX audit_log_unsealed ON audit_log (seq) WHERE pos IS NULL;

COMMENT ON COLUMN audit_checkpoints.seq IS 'chain position (audit_log.pos) of the signed entry';
