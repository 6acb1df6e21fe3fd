-- Guards (shared/db/guard.go): a statement that fails when a condition the writer relied
-- on no longer holds. A change sent as one batch without BEGIN runs in one implicit
-- transaction, so a failed guard rolls back every write of the batch, server-side, and
-- the change needs no round trip of its own to begin, check and commit.

CREATE FUNCTION sscard_expect(ok boolean, guard text) RETURNS boolean
    LANGUAGE plpgsql AS $$
BEGIN
    IF ok IS NOT TRUE THEN
        RAISE EXCEPTION 'guard % failed', guard USING ERRCODE = 'SSG01', DETAIL = guard;
    END IF;
    RETURN true;
END
$$;
