-- Mirrors migrations/postgres/0001: TEXT timestamps in RFC 3339 UTC, JSON as TEXT.
CREATE TABLE users (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    registration_number TEXT    NOT NULL UNIQUE,
    email               TEXT    NOT NULL CHECK (email = lower(email)),
    password_hash       TEXT    NOT NULL,
    family_name         TEXT    NOT NULL,
    given_name          TEXT    NOT NULL,
    family_name_kana    TEXT    NOT NULL,
    given_name_kana     TEXT    NOT NULL,
    phone               TEXT    NOT NULL,
    birth_date          TEXT    NOT NULL,
    postal_code         TEXT    NOT NULL,
    prefecture          TEXT    NOT NULL,
    city                TEXT    NOT NULL,
    street              TEXT    NOT NULL,
    building            TEXT    NOT NULL DEFAULT '',
    plan_id             TEXT    NOT NULL,
    created_at          TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE UNIQUE INDEX users_email_key ON users (email);
CREATE INDEX users_created_at_idx ON users (created_at);

CREATE TABLE user_sessions (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    token_hash          TEXT    NOT NULL UNIQUE,
    csrf_token          TEXT    NOT NULL,
    user_data           TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(user_data)),
    password_hash       TEXT,
    status              TEXT    NOT NULL DEFAULT 'active'
                        CHECK (status IN ('active', 'completed', 'expired')),
    registration_number TEXT,
    user_id             INTEGER REFERENCES users (id) ON DELETE SET NULL,
    created_at          TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at          TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    completed_at        TEXT
);
CREATE INDEX user_sessions_created_at_idx ON user_sessions (created_at);
CREATE INDEX user_sessions_email_idx ON user_sessions (json_extract(user_data, '$.email'));
CREATE INDEX user_sessions_active_idx ON user_sessions (updated_at) WHERE status = 'active';
