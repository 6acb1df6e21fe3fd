-- Blacklist versions by sequencing (issue 5 speed). Before this, every status change took
-- the blacklist_meta row lock to draw the next version and held it until commit, so all
-- status changes of all cards ran one at a time. Now a change only inserts its row into
-- blacklist_changes (version NULL); a sequencer, one at a time under an advisory lock,
-- numbers the committed changes in order and applies them to blacklist_entries and
-- blacklist_meta. Every reader of the blacklist sequences first, so a reader that has
-- seen version N has seen every change up to N, and nothing committed is left out.
--
-- Ordering between changes of one card comes from the card itself: cards.version (the
-- history seq) counts its status changes under the card row lock. Events and the bank
-- sync carry that number (status_version), not a blacklist version.

ALTER TABLE blacklist_changes DROP CONSTRAINT blacklist_changes_pkey;
ALTER TABLE blacklist_changes ALTER COLUMN version DROP NOT NULL;
ALTER TABLE blacklist_changes ADD CONSTRAINT blacklist_changes_version_key UNIQUE (version);
-- Insertion order, drawn without a lock (existing rows are sequenced already; their ids
-- need no particular order).
ALTER TABLE blacklist_changes ADD COLUMN change_id bigint;
CREATE SEQUENCE blacklist_changes_change_id_seq OWNED BY blacklist_changes.change_id;
UPDATE blacklist_changes SET change_id = nextval('blacklist_changes_change_id_seq');
ALTER TABLE blacklist_changes ALTER COLUMN change_id SET DEFAULT nextval('blacklist_changes_change_id_seq');
ALTER TABLE blacklist_changes ALTER COLUMN change_id SET NOT NULL;
ALTER TABLE blacklist_changes ADD PRIMARY KEY (change_id);
CREATE INDEX blacklist_changes_pending ON blacklist_changes (change_id) WHERE version IS NULL;
ALTER TABLE blacklist_changes ADD COLUMN status_version bigint;   -- cards.version after the change

-- The card's change number replaces the blacklist version where one card's changes must
-- be ordered (a bank keeps the newest).
ALTER TABLE cards DROP COLUMN blacklist_version;
ALTER TABLE card_status_history DROP COLUMN blacklist_version;
ALTER TABLE bank_sync_acks RENAME COLUMN blacklist_version TO status_version;
ALTER INDEX bank_sync_acks_card RENAME TO bank_sync_acks_card_version;
ALTER TABLE bank_sim_requests RENAME COLUMN blacklist_version TO status_version;
ALTER TABLE bank_sim_cards RENAME COLUMN blacklist_version TO status_version;

COMMENT ON TABLE blacklist_meta IS 'version: the newest sequenced blacklist version; compacted_through: deltas before it need a snapshot';
