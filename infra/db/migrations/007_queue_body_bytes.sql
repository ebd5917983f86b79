-- The embedded queue stores bodies compressed before sealing them
-- (infra/transport/sealed-body.ts), so a body's stored length no longer says how much memory it
-- takes once opened. A receive is bounded by plaintext bytes (RECEIVE_BYTES in
-- infra/transport/embedded.ts); body_bytes records them. NULL for rows written before this
-- migration: those were stored uncompressed, so their stored length is what they take.
ALTER TABLE queue_messages ADD COLUMN body_bytes int;
ALTER TABLE queue_dead_letters ADD COLUMN body_bytes int;
