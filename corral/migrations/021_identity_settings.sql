-- 021 identity: settings an admin changes at run time (e.g. require TOTP for admins).
CREATE TABLE identity_settings (
    key        TEXT PRIMARY KEY,
    value      JSONB NOT NULL,
    updated_by UUID REFERENCES users(id) ON DELETE SET NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
