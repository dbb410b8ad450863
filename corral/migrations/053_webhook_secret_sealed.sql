-- 053 projects: webhook secrets encrypted at rest with the secrets envelope (AES-256-GCM under a per-webhook
-- data key, the data key wrapped by the master key, both bound to the webhook id), like TOTP secrets (022).
-- SQL cannot encrypt (the master key never reaches the database), so secrets left in plain text are sealed
-- once by Corral at start-up (projects wiring: seal_plaintext_webhook_secrets), which then clears `secret`.
-- Until then their deliveries wait (retried), never sent unsigned.
ALTER TABLE webhooks
    ADD COLUMN secret_sealed      BYTEA,                -- the HMAC secret, encrypted under the data key
    ADD COLUMN secret_key_id      TEXT,                 -- the master key the data key is wrapped under
    ADD COLUMN secret_wrapped_key BYTEA,                -- the data key, wrapped
    ADD CONSTRAINT webhooks_secret_sealed_or_legacy CHECK (
        (secret IS NULL OR secret_sealed IS NULL)
        AND (secret_sealed IS NULL) = (secret_key_id IS NULL)
        AND (secret_key_id IS NULL) = (secret_wrapped_key IS NULL)
    );
COMMENT ON COLUMN webhooks.secret IS 'legacy plaintext HMAC secret; NULL once sealed (see secret_sealed)';
CREATE INDEX idx_webhooks_secret_key_id ON webhooks (secret_key_id) WHERE secret_key_id IS NOT NULL;
CREATE INDEX idx_webhooks_secret_plaintext ON webhooks (id) WHERE secret IS NOT NULL;
