-- Outgoing mail, written in the same transaction as the registration it belongs to, and
-- delivered by a worker in every instance (rows are claimed with FOR UPDATE SKIP LOCKED).
CREATE TABLE outbox (
    id              BIGSERIAL   PRIMARY KEY,
    kind            TEXT        NOT NULL,
    recipient       TEXT        NOT NULL,
    subject         TEXT        NOT NULL,
    body_text       TEXT        NOT NULL,
    body_html       TEXT        NOT NULL,
    status          TEXT        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    attempts        INTEGER     NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- A worker's lease on the row while it sends; an expired lease (crash) frees it again.
    locked_until    TIMESTAMPTZ,
    last_error      TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    sent_at         TIMESTAMPTZ
);
CREATE INDEX outbox_due_idx ON outbox (next_attempt_at) WHERE status = 'pending';

ALTER TABLE users ADD COLUMN email_verified_at TIMESTAMPTZ;

-- At most one 既に登録済み mail per address per hour, and one resent verification per 10 min.
CREATE TABLE mail_throttle (
    kind         TEXT        NOT NULL,
    email        TEXT        NOT NULL,
    last_sent_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (kind, email)
);
