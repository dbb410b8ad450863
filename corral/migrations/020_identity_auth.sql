-- 020 identity: session activity + CSRF, token prefix, login regulation, TOTP.

-- expires_at (001) is the absolute expiry; last_seen_at drives the inactivity timeout (written in batches)
ALTER TABLE auth_sessions
    ADD COLUMN last_seen_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    ADD COLUMN csrf_hash    TEXT NOT NULL DEFAULT '';           -- sha256 of the session's CSRF token

-- the first characters of the token ("crl_" + 6), to recognise a token in a list; never enough to use it
ALTER TABLE api_tokens ADD COLUMN prefix TEXT NOT NULL DEFAULT '';

-- failed logins per key ('user:NAME' or 'ip:ADDR'), counted within a window; old rows are pruned
CREATE TABLE login_failures (
    key TEXT NOT NULL,
    at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX idx_login_failures_key_at ON login_failures (key, at);

CREATE TABLE login_bans (
    key   TEXT PRIMARY KEY,
    until TIMESTAMPTZ NOT NULL
);

CREATE TABLE user_totp (
    user_id         UUID PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    secret          TEXT NOT NULL,                     -- base32 TOTP secret
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    confirmed_at    TIMESTAMPTZ,                       -- NULL while enrolment is not confirmed
    recovery_hashes TEXT[] NOT NULL DEFAULT '{}',      -- sha256 of unused recovery codes
    last_step       BIGINT NOT NULL DEFAULT 0          -- last accepted time step (no replay)
);
