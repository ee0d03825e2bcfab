-- The admin console (/admin): accounts, their sessions, sign-in throttling, the audit log and the
-- operators' external-API switches.

-- Created only by the CLI (`normal-form-app admin create`); there is no default account.
CREATE TABLE admin_users (
    id                 BIGSERIAL   PRIMARY KEY,
    email              TEXT        NOT NULL UNIQUE CHECK (email = lower(email)),
    role               TEXT        NOT NULL CHECK (role IN ('operator', 'viewer')),
    password_hash      TEXT        NOT NULL,
    -- The TOTP secret, encrypted with a key derived from SECRET_KEY (ChaCha20-Poly1305); NULL
    -- until the account enrols at its first sign-in.
    totp_secret        TEXT,
    -- The last accepted TOTP time step: a code is accepted once (RFC 6238 §5.2).
    totp_last_step     BIGINT      NOT NULL DEFAULT 0,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_sign_in_at    TIMESTAMPTZ
);

-- One-time recovery codes, kept as SHA-256 like every other bearer secret.
CREATE TABLE admin_recovery_codes (
    admin_id   BIGINT      NOT NULL REFERENCES admin_users (id) ON DELETE CASCADE,
    code_hash  TEXT        NOT NULL,
    used_at    TIMESTAMPTZ,
    PRIMARY KEY (admin_id, code_hash)
);

-- stage: 'second_factor' after the password (TOTP or enrolment still to come), 'active' after.
-- The cookie carries a random token; the row keeps its SHA-256.
CREATE TABLE admin_sessions (
    id           BIGSERIAL   PRIMARY KEY,
    token_hash   TEXT        NOT NULL UNIQUE,
    admin_id     BIGINT      NOT NULL REFERENCES admin_users (id) ON DELETE CASCADE,
    stage        TEXT        NOT NULL CHECK (stage IN ('second_factor', 'active')),
    csrf_token   TEXT        NOT NULL,
    -- During enrolment: the new TOTP secret (encrypted) until the first code confirms it.
    pending_totp_secret TEXT,
    created_at   TIMESTAMPTZ NOT NULL,
    last_seen_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX admin_sessions_admin_idx ON admin_sessions (admin_id);

-- Failed sign-ins per account ('account:<id>') and per client network ('network:<cidr>'), shared
-- by every instance. After a few failures the key waits, twice as long each time, up to a cap.
CREATE TABLE admin_sign_in_throttle (
    key          TEXT        PRIMARY KEY,
    failures     INTEGER     NOT NULL,
    locked_until TIMESTAMPTZ,
    updated_at   TIMESTAMPTZ NOT NULL
);

-- Who did what, when, to what, with the state before and after. Never personal data of
-- registrants: a deleted registration is named by its id and 受付番号 only.
CREATE TABLE audit_log (
    id         BIGSERIAL   PRIMARY KEY,
    admin_id   BIGINT      REFERENCES admin_users (id) ON DELETE SET NULL,
    actor      TEXT        NOT NULL,
    action     TEXT        NOT NULL,
    target     TEXT        NOT NULL DEFAULT '',
    detail     JSONB       NOT NULL DEFAULT '{}'::jsonb,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_created_at_idx ON audit_log (created_at);

-- 外部API切替: an operator forces an API's fallback on. Every instance polls this table.
CREATE TABLE api_switches (
    api         TEXT        PRIMARY KEY CHECK (api IN ('AddressAPI', 'InventoryAPI', 'RegionAPI')),
    forced      BOOLEAN     NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    updated_by  TEXT        NOT NULL
);
