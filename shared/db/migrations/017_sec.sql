-- Revoking a caller takes effect at once (issue 14): every change to the caller registry,
-- however made (the callers tool, SQL by hand), bumps one version row, which each signed
-- call reads (shared/callsign PGRegistry) before trusting its cached snapshot.
CREATE TABLE callsign_registry_version (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    version  bigint  NOT NULL
);
INSERT INTO callsign_registry_version (only_row, version) VALUES (true, 1);

CREATE FUNCTION callsign_registry_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE callsign_registry_version SET version = version + 1;
    RETURN NULL;
END $$;

CREATE TRIGGER callsign_apps_bump AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON callsign_apps
    FOR EACH STATEMENT EXECUTE FUNCTION callsign_registry_bump();
CREATE TRIGGER callsign_keys_bump AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON callsign_keys
    FOR EACH STATEMENT EXECUTE FUNCTION callsign_registry_bump();
