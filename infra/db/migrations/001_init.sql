-- Tenants. last_seq is the tenant's gapless event sequence; persist locks the row to extend it.
CREATE TABLE tenants (
  id         text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
  name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 256),
  created_at timestamptz NOT NULL DEFAULT now(),
  last_seq   bigint NOT NULL DEFAULT 0
);

-- Per-tenant data keys, wrapped by the master key (local key file or KMS). Never stored in clear.
CREATE TABLE tenant_keys (
  tenant_id  text NOT NULL REFERENCES tenants (id),
  key_id     int NOT NULL,
  wrapped    bytea NOT NULL,
  wrapped_by text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, key_id)
);

-- Idempotency and id lookup: one row per stored event. Its primary key is what makes persist
-- exactly-once, and it maps an id to occurred_at so a read by id prunes to one partition.
CREATE TABLE event_ids (
  tenant_id   text NOT NULL,
  id          uuid NOT NULL,
  occurred_at timestamptz NOT NULL,
  seq         bigint NOT NULL,
  PRIMARY KEY (tenant_id, id)
);

-- The events. before/after/metadata live only inside `sealed` (AES-256-GCM under the tenant's
-- data key). tsv holds lexemes of the masked message, action, resource, user and metadata values.
-- On TimescaleDB this is a hypertable; elsewhere (including RDS) a table partitioned by day whose
-- partitions infra/db/partitions.ts creates ahead and on demand for backfills.
DO $$
DECLARE
  cols text := $cols$
    tenant_id     text NOT NULL,
    seq           bigint NOT NULL,
    id            uuid NOT NULL,
    occurred_at   timestamptz NOT NULL,
    received_at   timestamptz NOT NULL,
    user_id       text,
    session_id    text,
    action        text NOT NULL,
    resource_type text NOT NULL,
    resource_id   text,
    severity      text NOT NULL,
    ip_address    inet,
    user_agent    text,
    message       text,
    request_id    text,
    key_id        int NOT NULL,
    sealed        bytea,
    meta_idx      text[],
    tsv           tsvector NOT NULL
  $cols$;
BEGIN
  BEGIN
    CREATE EXTENSION IF NOT EXISTS timescaledb;
  EXCEPTION WHEN OTHERS THEN
    NULL; -- not installed or not preloaded: use native partitioning
  END;
  IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
    EXECUTE format('CREATE TABLE events (%s)', cols);
    PERFORM create_hypertable('events', 'occurred_at', chunk_time_interval => interval '1 day');
    EXECUTE 'ALTER TABLE events SET (timescaledb.compress, timescaledb.compress_segmentby = ''tenant_id'', timescaledb.compress_orderby = ''occurred_at DESC, seq DESC'')';
    PERFORM add_compression_policy('events', interval '7 days');
  ELSE
    EXECUTE format('CREATE TABLE events (%s) PARTITION BY RANGE (occurred_at)', cols);
  END IF;
END $$;

-- Keyset pagination: every index used for a page ends in the (occurred_at, seq) tiebreaker.
CREATE INDEX events_tenant_time ON events (tenant_id, occurred_at DESC, seq DESC);
CREATE INDEX events_tenant_user ON events (tenant_id, user_id, occurred_at DESC, seq DESC);
CREATE INDEX events_tenant_action ON events (tenant_id, action, occurred_at DESC, seq DESC);
CREATE INDEX events_tenant_resource ON events (tenant_id, resource_type, resource_id, occurred_at DESC, seq DESC);
CREATE INDEX events_tenant_severity ON events (tenant_id, severity, occurred_at DESC, seq DESC);
CREATE INDEX events_tenant_request ON events (tenant_id, request_id, seq) WHERE request_id IS NOT NULL;
CREATE INDEX events_tenant_seq ON events (tenant_id, seq);
CREATE INDEX events_tsv ON events USING gin (tsv);

-- The embedded durable queue. Bodies are AES-256-GCM encrypted: raw events, before masking,
-- never reach disk in clear.
CREATE TABLE queue_messages (
  id         bigserial PRIMARY KEY,
  queue      text NOT NULL,
  group_id   text NOT NULL,
  dedup_id   text NOT NULL,
  body       bytea NOT NULL,
  attempts   int NOT NULL DEFAULT 0,
  visible_at timestamptz NOT NULL DEFAULT now(),
  sent_at    timestamptz NOT NULL DEFAULT now(),
  receipt    uuid
);
CREATE UNIQUE INDEX queue_messages_dedup ON queue_messages (queue, dedup_id);
CREATE INDEX queue_messages_group ON queue_messages (queue, group_id, id);
CREATE INDEX queue_messages_queue_id ON queue_messages (queue, id);

CREATE TABLE queue_dead_letters (
  id       bigint PRIMARY KEY,
  queue    text NOT NULL,
  group_id text NOT NULL,
  dedup_id text NOT NULL,
  body     bytea NOT NULL,
  attempts int NOT NULL,
  sent_at  timestamptz NOT NULL,
  dead_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX queue_dead_letters_queue ON queue_dead_letters (queue, id);
