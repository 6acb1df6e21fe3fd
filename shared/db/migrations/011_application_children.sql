-- Fewer checks per application (issue 5 speed), on the rule migration 010 applied to a
-- card's history: rows that belong to one application are written only in the batch or
-- transaction that writes the application itself, under its version guard or row lock
-- (shared/application), and applications are never deleted (withdrawn is a status). The
-- foreign keys from its history and photo rows re-checked, with a lookup and a row lock
-- each, a row that batch had just written: three per application sent with its photo.
-- Links between aggregates (an application's person, a replaced card) keep theirs.
ALTER TABLE application_history DROP CONSTRAINT application_history_application_id_fkey;
ALTER TABLE application_photos DROP CONSTRAINT application_photos_application_id_fkey;
