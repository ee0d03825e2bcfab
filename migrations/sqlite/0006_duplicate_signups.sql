-- Mirrors migrations/postgres/0006.
CREATE TABLE duplicate_signups (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX duplicate_signups_created_at_idx ON duplicate_signups (created_at);
