-- Attempts to register an address that is already a member: only the time, never the address
-- (a spike may mean someone probes which addresses are registered). Written by the duplicate
-- path of the submit, which thereby also makes as many writes as a new registration.
CREATE TABLE duplicate_signups (
    id         BIGSERIAL   PRIMARY KEY,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX duplicate_signups_created_at_idx ON duplicate_signups (created_at);
