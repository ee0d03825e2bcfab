-- The retention purge (src/purge.rs) selects expired mail by its creation time; created_at is
-- written once, so the index costs nothing on the updates the worker makes.
CREATE INDEX outbox_created_at_idx ON outbox (created_at);
CREATE INDEX mail_throttle_last_sent_at_idx ON mail_throttle (last_sent_at);
