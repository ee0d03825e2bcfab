-- Mirrors migrations/postgres/0007.
CREATE TABLE admin_users (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    email              TEXT    NOT NULL UNIQUE CHECK (email = lower(email)),
    role               TEXT    NOT NULL CHECK (role IN ('operator', 'viewer')),
    password_hash      TEXT    NOT NULL,
    totp_secret        TEXT,
    totp_last_step     INTEGER NOT NULL DEFAULT 0,
    created_at         TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    last_sign_in_at    TEXT
);

CREATE TABLE admin_recovery_codes (
    admin_id   INTEGER NOT NULL REFERENCES admin_users (id) ON DELETE CASCADE,
    code_hash  TEXT    NOT NULL,
    used_at    TEXT,
    PRIMARY KEY (admin_id, code_hash)
);

CREATE TABLE admin_sessions (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    token_hash   TEXT    NOT NULL UNIQUE,
    admin_id     INTEGER NOT NULL REFERENCES admin_users (id) ON DELETE CASCADE,
    stage        TEXT    NOT NULL CHECK (stage IN ('second_factor', 'active')),
    csrf_token   TEXT    NOT NULL,
    pending_totp_secret TEXT,
    created_at   TEXT    NOT NULL,
    last_seen_at TEXT    NOT NULL
);
CREATE INDEX admin_sessions_admin_idx ON admin_sessions (admin_id);

CREATE TABLE admin_sign_in_throttle (
    key          TEXT    PRIMARY KEY,
    failures     INTEGER NOT NULL,
    locked_until TEXT,
    updated_at   TEXT    NOT NULL
);

CREATE TABLE audit_log (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    admin_id   INTEGER REFERENCES admin_users (id) ON DELETE SET NULL,
    actor      TEXT    NOT NULL,
    action     TEXT    NOT NULL,
    target     TEXT    NOT NULL DEFAULT '',
    detail     TEXT    NOT NULL DEFAULT '{}',
    created_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX audit_log_created_at_idx ON audit_log (created_at);

CREATE TABLE api_switches (
    api         TEXT    PRIMARY KEY CHECK (api IN ('AddressAPI', 'InventoryAPI', 'RegionAPI')),
    forced      INTEGER NOT NULL,
    updated_at  TEXT    NOT NULL,
    updated_by  TEXT    NOT NULL
);
