-- The deployments table, its status enum, its history and the triggers that
-- keep generation, timestamps and notifications right.
--
-- This migration builds the table through idempotent "ensure" steps rather
-- than one CREATE TABLE, so that a fresh database and the platform's
-- pre-existing deployments table (status as text) take the same path:
--
--   1. refuse, before anything changes, a legacy status value that is not one
--      of the seven statuses (the error lists every offending value);
--   2. create the enum (or check that an existing one has exactly our labels);
--   3. create the table if it is missing, add every missing column with its
--      default, convert columns of another type (text status -> enum, text id
--      -> uuid, varchar -> text, timestamp -> timestamptz, json -> jsonb),
--      fill NULLs of defaulted columns, add the primary key and the checks;
--   4. create deployment_events, the indexes and the triggers.
--
-- goose runs the whole file in one transaction: when any step fails, nothing
-- of it remains.

-- +goose Up

-- +goose StatementBegin
DO $$
DECLARE
    status_type regtype;
    bad text;
BEGIN
    IF to_regclass('deployments') IS NULL THEN
        RETURN;
    END IF;
    SELECT a.atttypid::regtype INTO status_type
      FROM pg_attribute a
     WHERE a.attrelid = to_regclass('deployments') AND a.attname = 'status'
       AND a.attnum > 0 AND NOT a.attisdropped;
    IF status_type IS NULL OR status_type IS NOT DISTINCT FROM to_regtype('deployment_status') THEN
        RETURN;
    END IF;
    EXECUTE $q$
        SELECT string_agg(DISTINCT quote_literal(status::text), ', ' ORDER BY quote_literal(status::text))
          FROM deployments
         WHERE status IS NOT NULL
           AND status::text NOT IN ('pending', 'installing', 'starting', 'running', 'unhealthy', 'stopped', 'failed')
    $q$ INTO bad;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'deployments.status holds values that are not deployment statuses: %', bad
            USING ERRCODE = 'check_violation',
                  HINT = 'allowed: pending, installing, starting, running, unhealthy, stopped, failed; update or delete those rows, then migrate again';
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
DO $$
BEGIN
    IF to_regtype('deployment_status') IS NULL THEN
        CREATE TYPE deployment_status AS ENUM (
            'pending', 'installing', 'starting', 'running', 'unhealthy', 'stopped', 'failed'
        );
    ELSIF (SELECT array_agg(e.enumlabel::text ORDER BY e.enumsortorder)
             FROM pg_enum e WHERE e.enumtypid = to_regtype('deployment_status'))
          IS DISTINCT FROM
          ARRAY['pending', 'installing', 'starting', 'running', 'unhealthy', 'stopped', 'failed'] THEN
        RAISE EXCEPTION 'a type deployment_status exists and is not the enum flightdeck needs (pending, installing, starting, running, unhealthy, stopped, failed)'
            USING ERRCODE = 'duplicate_object';
    END IF;
END
$$;
-- +goose StatementEnd

CREATE TABLE IF NOT EXISTS deployments ();

ALTER TABLE deployments
    ADD COLUMN IF NOT EXISTS id uuid NOT NULL DEFAULT gen_random_uuid(),
    ADD COLUMN IF NOT EXISTS name text,
    ADD COLUMN IF NOT EXISTS package text,
    ADD COLUMN IF NOT EXISTS env jsonb NOT NULL DEFAULT '{}',
    ADD COLUMN IF NOT EXISTS machine_id text,
    ADD COLUMN IF NOT EXISTS private_ip text,
    ADD COLUMN IF NOT EXISTS region text,
    ADD COLUMN IF NOT EXISTS status deployment_status NOT NULL DEFAULT 'pending',
    ADD COLUMN IF NOT EXISTS progress_message text,
    ADD COLUMN IF NOT EXISTS error_message text,
    ADD COLUMN IF NOT EXISTS generation bigint NOT NULL DEFAULT 1,
    ADD COLUMN IF NOT EXISTS observed_generation bigint NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS status_changed_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN IF NOT EXISTS created_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN IF NOT EXISTS updated_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN IF NOT EXISTS deleted_at timestamptz;

-- Convert the columns of a legacy table whose type differs, set the defaults
-- and NOT NULLs. On a fresh table every column already has the wanted type
-- and this only re-states defaults.
-- +goose StatementBegin
DO $$
DECLARE
    col record;
    chk record;
    have regtype;
    pk_cols text[];
BEGIN
    FOR col IN
        SELECT * FROM (VALUES
            ('id',                  'uuid'::regtype,              'gen_random_uuid()'),
            ('name',                'text'::regtype,              NULL),
            ('package',             'text'::regtype,              NULL),
            ('env',                 'jsonb'::regtype,             '''{}''::jsonb'),
            ('machine_id',          'text'::regtype,              NULL),
            ('private_ip',          'text'::regtype,              NULL),
            ('region',              'text'::regtype,              NULL),
            ('status',              'deployment_status'::regtype, '''pending''::deployment_status'),
            ('progress_message',    'text'::regtype,              NULL),
            ('error_message',       'text'::regtype,              NULL),
            ('generation',          'bigint'::regtype,            '1'),
            ('observed_generation', 'bigint'::regtype,            '0'),
            ('status_changed_at',   'timestamptz'::regtype,       'now()'),
            ('created_at',          'timestamptz'::regtype,       'now()'),
            ('updated_at',          'timestamptz'::regtype,       'now()'),
            ('deleted_at',          'timestamptz'::regtype,       NULL)
        ) AS c(name, want, dflt)
    LOOP
        SELECT a.atttypid::regtype INTO have
          FROM pg_attribute a
         WHERE a.attrelid = 'deployments'::regclass AND a.attname = col.name
           AND a.attnum > 0 AND NOT a.attisdropped;
        IF have IS DISTINCT FROM col.want THEN
            -- A legacy default may not survive the type change; ours is set below.
            EXECUTE format('ALTER TABLE deployments ALTER COLUMN %I DROP DEFAULT', col.name);
            IF col.name = 'status' THEN
                -- A NULL legacy status means no status was recorded yet.
                UPDATE deployments SET status = 'pending' WHERE status IS NULL;
                -- CHECKs on the text status alone (status IN (...)) cannot
                -- survive the type change, and the enum takes their place.
                FOR chk IN
                    SELECT c.conname FROM pg_constraint c
                     WHERE c.conrelid = 'deployments'::regclass AND c.contype = 'c'
                       AND c.conkey = ARRAY[(SELECT a.attnum FROM pg_attribute a
                                              WHERE a.attrelid = 'deployments'::regclass AND a.attname = 'status')]
                LOOP
                    EXECUTE format('ALTER TABLE deployments DROP CONSTRAINT %I', chk.conname);
                END LOOP;
            END IF;
            EXECUTE format('ALTER TABLE deployments ALTER COLUMN %I TYPE %s USING %I::text::%s',
                           col.name, col.want, col.name, col.want);
        END IF;
        IF col.dflt IS NOT NULL THEN
            EXECUTE format('ALTER TABLE deployments ALTER COLUMN %I SET DEFAULT %s', col.name, col.dflt);
            EXECUTE format('UPDATE deployments SET %I = DEFAULT WHERE %I IS NULL', col.name, col.name);
            EXECUTE format('ALTER TABLE deployments ALTER COLUMN %I SET NOT NULL', col.name);
        END IF;
    END LOOP;

    ALTER TABLE deployments ALTER COLUMN name SET NOT NULL;
    ALTER TABLE deployments ALTER COLUMN package SET NOT NULL;

    SELECT array_agg(a.attname::text ORDER BY a.attname) INTO pk_cols
      FROM pg_constraint c
      JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)
     WHERE c.conrelid = 'deployments'::regclass AND c.contype = 'p';
    IF pk_cols IS NULL THEN
        ALTER TABLE deployments ADD CONSTRAINT deployments_pkey PRIMARY KEY (id);
    ELSIF pk_cols <> ARRAY['id'] THEN
        RAISE EXCEPTION 'deployments has the primary key (%), flightdeck needs (id)', array_to_string(pk_cols, ', ')
            USING ERRCODE = 'invalid_table_definition';
    END IF;
END
$$;
-- +goose StatementEnd

-- The checks. The store validates the same rules before it writes (see
-- store/validate.go), so that callers get a typed error naming the field; the
-- checks hold the line for every other writer.
-- +goose StatementBegin
DO $$
DECLARE
    chk record;
BEGIN
    FOR chk IN
        SELECT * FROM (VALUES
            ('deployments_name_valid',
             $c$CHECK (char_length(name) BETWEEN 1 AND 128 AND btrim(name) <> '' AND name !~ '[[:cntrl:]]')$c$),
            ('deployments_package_valid',
             $c$CHECK (char_length(package) BETWEEN 1 AND 256 AND package = btrim(package) AND package <> '' AND package !~ '[[:cntrl:]]')$c$),
            ('deployments_env_valid',
             $c$CHECK (jsonb_typeof(env) = 'object'
                       AND NOT jsonb_path_exists(env, '$.* ? (@.type() != "string")')
                       AND NOT jsonb_path_exists(env, '$.keyvalue() ? (!(@.key like_regex "^[A-Za-z_][A-Za-z0-9_]{0,255}$"))')
                       AND octet_length(env::text) <= 65536)$c$),
            ('deployments_machine_id_length',       $c$CHECK (char_length(machine_id) BETWEEN 1 AND 64)$c$),
            ('deployments_private_ip_length',       $c$CHECK (char_length(private_ip) BETWEEN 1 AND 64)$c$),
            ('deployments_region_length',           $c$CHECK (char_length(region) BETWEEN 1 AND 32)$c$),
            ('deployments_progress_message_length', $c$CHECK (char_length(progress_message) BETWEEN 1 AND 2048)$c$),
            ('deployments_error_message_length',    $c$CHECK (char_length(error_message) BETWEEN 1 AND 2048)$c$),
            ('deployments_generation_valid',
             $c$CHECK (generation >= 1 AND observed_generation >= 0 AND observed_generation <= generation)$c$)
        ) AS c(name, def)
    LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_constraint
                        WHERE conrelid = 'deployments'::regclass AND conname = chk.name) THEN
            EXECUTE format('ALTER TABLE deployments ADD CONSTRAINT %I %s', chk.name, chk.def);
        END IF;
    END LOOP;
END
$$;
-- +goose StatementEnd

CREATE INDEX IF NOT EXISTS deployments_status_created_idx
    ON deployments (status, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS deployments_created_idx
    ON deployments (created_at DESC, id DESC);

-- deployment_events is flightdeck's own: no IF NOT EXISTS, so that a foreign
-- table of that name stops the migration instead of being used.
CREATE TABLE deployment_events (
    id            bigserial PRIMARY KEY,
    deployment_id uuid NOT NULL REFERENCES deployments (id) ON DELETE CASCADE,
    created_at    timestamptz NOT NULL DEFAULT now(),
    from_status   deployment_status NOT NULL,
    to_status     deployment_status NOT NULL,
    reason        text NOT NULL CHECK (reason ~ '^[A-Z][A-Za-z0-9]{0,63}$'),
    message       text NOT NULL DEFAULT '' CHECK (char_length(message) <= 2048)
);

CREATE INDEX deployment_events_deployment_created_idx
    ON deployment_events (deployment_id, created_at DESC, id DESC);

-- deployments_before_update owns generation, status_changed_at and
-- updated_at, whoever writes the row:
--   * generation goes up by one when the spec (package, env) changes or the
--     deletion mark (deleted_at) is set or cleared; writes to generation
--     itself are ignored. A controller write guarded on the old generation
--     therefore fails after any such change.
--   * status_changed_at becomes now() when status changes, unless the writer
--     set it in the same statement (the store does, from its clock).
--   * updated_at becomes now() when any column changes, unless the writer set it.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION deployments_before_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.package IS DISTINCT FROM OLD.package
       OR NEW.env IS DISTINCT FROM OLD.env
       OR NEW.deleted_at IS DISTINCT FROM OLD.deleted_at THEN
        NEW.generation := OLD.generation + 1;
    ELSE
        NEW.generation := OLD.generation;
    END IF;
    IF NEW.status IS DISTINCT FROM OLD.status
       AND NEW.status_changed_at IS NOT DISTINCT FROM OLD.status_changed_at THEN
        NEW.status_changed_at := now();
    END IF;
    IF NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at
       AND to_jsonb(NEW) IS DISTINCT FROM to_jsonb(OLD) THEN
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END
$$;
-- +goose StatementEnd

-- deployments_notify tells listeners which row changed; the payload is the id.
--   flightdeck_deployments: the row was inserted or deleted, or its
--     generation moved (spec change, deletion mark). Not for the controller's
--     own writes (status, messages, observed_generation, machine).
--   flightdeck_status: any change a viewer of the row could see: insert,
--     delete, or an update that changes any column.
-- NOTIFY is delivered at commit, and only if the transaction commits.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION deployments_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM pg_notify('flightdeck_deployments', NEW.id::text);
        PERFORM pg_notify('flightdeck_status', NEW.id::text);
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('flightdeck_deployments', OLD.id::text);
        PERFORM pg_notify('flightdeck_status', OLD.id::text);
    ELSE
        IF NEW.generation <> OLD.generation THEN
            PERFORM pg_notify('flightdeck_deployments', NEW.id::text);
        END IF;
        IF to_jsonb(NEW) IS DISTINCT FROM to_jsonb(OLD) THEN
            PERFORM pg_notify('flightdeck_status', NEW.id::text);
        END IF;
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

DROP TRIGGER IF EXISTS deployments_before_update ON deployments;
CREATE TRIGGER deployments_before_update
    BEFORE UPDATE ON deployments
    FOR EACH ROW EXECUTE FUNCTION deployments_before_update();

DROP TRIGGER IF EXISTS deployments_notify ON deployments;
CREATE TRIGGER deployments_notify
    AFTER INSERT OR UPDATE OR DELETE ON deployments
    FOR EACH ROW EXECUTE FUNCTION deployments_notify();
