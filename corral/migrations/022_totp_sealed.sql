-- 022 identity: TOTP secrets encrypted at rest with the secrets envelope (AES-256-GCM under a per-row data
-- key, the data key wrapped by the master key, both bound to the user id). SQL cannot encrypt (the master
-- key never reaches the database), so rows left in plain text by 020 are sealed once by Corral at start-up
-- (identity wiring: seal_plaintext_totp), which then clears `secret`. Until then they refuse to be read.
ALTER TABLE user_totp
    ALTER COLUMN secret DROP NOT NULL,                  -- legacy plaintext; NULL once sealed
    ADD COLUMN secret_sealed BYTEA,                     -- the TOTP secret, encrypted under the data key
    ADD COLUMN key_id        TEXT,                      -- the master key the data key is wrapped under
    ADD COLUMN wrapped_key   BYTEA,                     -- the data key, wrapped
    ADD CONSTRAINT user_totp_sealed_or_legacy CHECK (
        (secret IS NULL) = (secret_sealed IS NOT NULL)
        AND (secret_sealed IS NULL) = (key_id IS NULL)
        AND (key_id IS NULL) = (wrapped_key IS NULL)
    );
CREATE INDEX idx_user_totp_key_id ON user_totp (key_id);
CREATE INDEX idx_user_totp_plaintext ON user_totp (user_id) WHERE secret IS NOT NULL;
