-- Mirrors migrations/postgres/0005.
CREATE TABLE api_idempotency (
    flow_id         INTEGER NOT NULL REFERENCES user_sessions (id) ON DELETE CASCADE,
    key             TEXT    NOT NULL,
    request_hash    TEXT    NOT NULL,
    status          TEXT    NOT NULL DEFAULT 'in_progress' CHECK (status IN ('in_progress', 'done')),
    response_status INTEGER,
    response_body   TEXT,
    created_at      TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (flow_id, key)
);
