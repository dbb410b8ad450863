-- 050 secrets envelope encryption: one row per version, each with its own data key wrapped by the master key.
-- secrets.version is the current version; values live only in secret_versions (ciphertext, never plaintext).

ALTER TABLE secrets ALTER COLUMN encrypted_value DROP NOT NULL;
ALTER TABLE secrets ADD COLUMN max_versions INTEGER NOT NULL DEFAULT 10 CHECK (max_versions > 0);

CREATE TABLE secret_versions (
    secret_id    UUID NOT NULL REFERENCES secrets(id) ON DELETE CASCADE,
    version      INTEGER NOT NULL CHECK (version > 0),
    ciphertext   BYTEA,                                 -- AES-256-GCM under the version's data key
    wrapped_key  BYTEA,                                 -- the data key, AES-256-GCM under master key key_id
    key_id       TEXT,                                  -- which master key wraps it (rotation progress)
    created_by   UUID,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at   TIMESTAMPTZ,                           -- soft delete (undelete restores)
    destroyed_at TIMESTAMPTZ,                           -- ciphertext and key erased for good
    PRIMARY KEY (secret_id, version),
    CHECK ((ciphertext IS NULL) = (wrapped_key IS NULL) AND (wrapped_key IS NULL) = (key_id IS NULL))
);
-- rotation looks up data keys still wrapped under an old master key
CREATE INDEX idx_secret_versions_key_id ON secret_versions(key_id) WHERE key_id IS NOT NULL;
