-- leader_leases holds one lease per name for leader election: the record is
-- the elector's opaque bytes (client-go's LeaderElectionRecord as JSON) and
-- version is the compare-and-set token, bumped by every successful update.

-- +goose Up
CREATE TABLE leader_leases (
    name       text PRIMARY KEY CHECK (char_length(name) BETWEEN 1 AND 128),
    record     bytea NOT NULL CHECK (octet_length(record) <= 65536),
    version    bigint NOT NULL DEFAULT 1 CHECK (version >= 1),
    updated_at timestamptz NOT NULL DEFAULT now()
);
