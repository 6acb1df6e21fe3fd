-- Fewer writes per card status change (issue 5 speed). A change is one guarded batch
-- (card update, history row, blacklist change, audit entry, event); each index and check
-- below cost every change a lookup or an index entry that protects nothing the batch does
-- not already ensure.

-- The history row's card is the row the same batch has just updated, under the version
-- guard (shared/card, apply), and cards are never deleted (cancel is a status). The
-- foreign key's check was a second lookup and row lock on that card per change (0.046 of
-- the history insert's 0.064 ms in pg_stat_statements).
ALTER TABLE card_status_history DROP CONSTRAINT card_status_history_card_id_fkey;

-- A change's row has no version until the sequencer numbers it; the unique index held an
-- entry for every NULL as well. Only numbered rows need it (deltas read version > N).
ALTER TABLE blacklist_changes DROP CONSTRAINT blacklist_changes_version_key;
CREATE UNIQUE INDEX blacklist_changes_version ON blacklist_changes (version) WHERE version IS NOT NULL;

-- Temporary losses waiting to lapse, on a table of their own. The lapse job's index used
-- to be on cards (temp_loss_expires_at, where status = 'temporary_loss'): every status
-- change touches both columns, so no card update could be HOT and each one added an entry
-- to every index of cards (key, card number, holder). Now a card update changes no
-- indexed column, and with room left on each page (fillfactor) it stays on its page with
-- no index work; the change into a temporary loss inserts here, the change out of one
-- deletes (shared/card, apply), in the same batch. The list repeats the card's expiry so
-- that its own index orders the lapse job's work; a test checks that the two agree.
CREATE TABLE card_temporary_losses (
    card_id    text        PRIMARY KEY,
    expires_at timestamptz NOT NULL
);
CREATE INDEX card_temporary_losses_due ON card_temporary_losses (expires_at, card_id);
INSERT INTO card_temporary_losses (card_id, expires_at)
    SELECT card_id, temp_loss_expires_at FROM cards WHERE status = 'temporary_loss';
DROP INDEX cards_temp_loss_due;
ALTER TABLE cards SET (fillfactor = 90);
