-- The key behind public ids (issue 13, item 10). Deliveries are shown as "msg_…", their row id
-- encrypted with this key (relay/crypt IDCipher), so ids do not reveal how many deliveries the
-- platform makes. One row, created by the first walhook process that needs it, sealed with the
-- keyring like every secret; it never rotates (re-sealing with a new encryption key keeps its
-- value), so public ids stay stable across key rotations and every replica computes the same ones.
CREATE TABLE walhook.id_key (
    id         smallint    PRIMARY KEY CHECK (id = 1),
    key_enc    bytea       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
