-- Idempotency-Key records of the JSON API's final submit (IETF httpapi-idempotency-key-header):
-- the same key and body replay the stored answer; the same key with another body is refused.
CREATE TABLE api_idempotency (
    flow_id         BIGINT      NOT NULL REFERENCES user_sessions (id) ON DELETE CASCADE,
    key             TEXT        NOT NULL,
    request_hash    TEXT        NOT NULL,
    status          TEXT        NOT NULL DEFAULT 'in_progress' CHECK (status IN ('in_progress', 'done')),
    response_status INTEGER,
    response_body   TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (flow_id, key)
);
