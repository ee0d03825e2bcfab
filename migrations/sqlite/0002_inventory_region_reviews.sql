-- Mirrors migrations/postgres/0002.
CREATE TABLE plan_stock (
    plan_id    TEXT    PRIMARY KEY,
    stock      INTEGER NOT NULL CHECK (stock >= 0),
    updated_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

ALTER TABLE users ADD COLUMN inventory_status TEXT NOT NULL DEFAULT 'reserved'
    CHECK (inventory_status IN ('reserved', 'needs_check', 'confirmed', 'rejected'));
ALTER TABLE users ADD COLUMN region_status TEXT NOT NULL DEFAULT 'eligible'
    CHECK (region_status IN ('eligible', 'unchecked', 'ineligible', 'approved', 'rejected'));
CREATE INDEX users_region_unchecked_idx ON users (id) WHERE region_status = 'unchecked';

CREATE TABLE manual_reviews (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind       TEXT    NOT NULL CHECK (kind IN ('inventory', 'region')),
    reason     TEXT    NOT NULL,
    status     TEXT    NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'rejected')),
    created_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    decided_at TEXT,
    decided_by TEXT,
    comment    TEXT
);
CREATE INDEX manual_reviews_pending_idx ON manual_reviews (created_at) WHERE status = 'pending';
CREATE UNIQUE INDEX manual_reviews_one_pending_key ON manual_reviews (user_id, kind) WHERE status = 'pending';
