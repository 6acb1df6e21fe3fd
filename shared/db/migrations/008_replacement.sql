-- Replacement applications (补换卡, issue 5): an application is a first card (首次申领), a
-- reissue after loss (补卡) or a renewal of a damaged or expired card (换卡). A replacement
-- names the card it supersedes; card-apply cancels that card (注销) in the transaction that
-- activates the new one, so a person never holds two usable cards.

ALTER TABLE applications
    ADD COLUMN kind             text NOT NULL DEFAULT 'first' CHECK (kind IN ('first', 'reissue', 'renewal')),
    ADD COLUMN replaces_card_id text REFERENCES cards (card_id),
    ADD COLUMN replaces_card_no text,                          -- 社保卡号 of that card, not PII
    ADD COLUMN replace_reason   text,                          -- lost | stolen | damaged | expired
    ADD CONSTRAINT applications_replacement_shape CHECK (
        (kind = 'first') = (replaces_card_id IS NULL)
        AND (replaces_card_id IS NULL) = (replaces_card_no IS NULL)
        AND (replaces_card_id IS NULL) = (replace_reason IS NULL));

-- A card is replaced at most once: of two replacements racing for one card (even for two
-- people, were the card register ever wrong about its holder) one is refused here. A
-- withdrawn replacement frees the card for another.
CREATE UNIQUE INDEX applications_replaces_once ON applications (replaces_card_id)
    WHERE replaces_card_id IS NOT NULL AND status <> 'withdrawn';
