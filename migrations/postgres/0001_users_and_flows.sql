-- Completed registrations. The runbook's SQL reads users.id, users.email and users.created_at.
CREATE TABLE users (
    id                  BIGSERIAL PRIMARY KEY,
    registration_number TEXT        NOT NULL UNIQUE,
    -- Always stored lower-cased, so the unique index below decides duplicates.
    email               TEXT        NOT NULL CHECK (email = lower(email)),
    password_hash       TEXT        NOT NULL,
    family_name         TEXT        NOT NULL,
    given_name          TEXT        NOT NULL,
    family_name_kana    TEXT        NOT NULL,
    given_name_kana     TEXT        NOT NULL,
    phone               TEXT        NOT NULL,
    birth_date          DATE        NOT NULL,
    postal_code         TEXT        NOT NULL,
    prefecture          TEXT        NOT NULL,
    city                TEXT        NOT NULL,
    street              TEXT        NOT NULL,
    building            TEXT        NOT NULL DEFAULT '',
    plan_id             TEXT        NOT NULL,
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email_key ON users (email);
-- 日次登録数: WHERE created_at >= CURRENT_DATE - INTERVAL '7 days'
CREATE INDEX users_created_at_idx ON users (created_at);

-- One row per visitor flow. user_data holds the entered values (never the password).
CREATE TABLE user_sessions (
    id                  BIGSERIAL PRIMARY KEY,
    -- SHA-256 of the cookie token: the token itself is never stored.
    token_hash          TEXT        NOT NULL UNIQUE,
    csrf_token          TEXT        NOT NULL,
    user_data           JSONB       NOT NULL DEFAULT '{}'::jsonb,
    password_hash       TEXT,
    status              TEXT        NOT NULL DEFAULT 'active'
                        CHECK (status IN ('active', 'completed', 'expired')),
    registration_number TEXT,
    user_id             BIGINT      REFERENCES users (id) ON DELETE SET NULL,
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    completed_at        TIMESTAMPTZ
);
-- 登録完了率: WHERE user_sessions.created_at >= ..., joined on user_data->>'email'
CREATE INDEX user_sessions_created_at_idx ON user_sessions (created_at);
CREATE INDEX user_sessions_email_idx ON user_sessions ((user_data->>'email'));
CREATE INDEX user_sessions_active_idx ON user_sessions (updated_at) WHERE status = 'active';
