-- ipamd schema: the only source of the database's tables.
--
-- Each section starts with a `-- migration: N` line. At start the server applies, in one transaction each, every
-- section whose N is above `PRAGMA user_version`, then sets user_version to N. Never edit a released section: add
-- a new one.
--
-- Conventions: ids are INTEGER PRIMARY KEY AUTOINCREMENT (never reused, so an old id or log entry never names a
-- different record); times are unix seconds; addresses are 16-byte big-endian BLOBs with
-- IPv4 stored IPv4-mapped (::ffff:a.b.c.d), so one index orders and range-scans both families. Every row that
-- belongs to an org carries org_id (directly or through its parent) and every query filters by it. Stamps:
-- modby_id / modby_name name the last modifier (modby_id is NULL for API_TOKENS operator tokens).

-- migration: 1

CREATE TABLE orgs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    identifier  TEXT NOT NULL COLLATE NOCASE UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    operator    INTEGER NOT NULL DEFAULT 0,
    created     INTEGER NOT NULL
);

CREATE TABLE users (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id    INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    username  TEXT NOT NULL COLLATE NOCASE,
    email     TEXT NOT NULL,
    realname  TEXT,
    level     TEXT NOT NULL CHECK (level IN ('readonly', 'standard', 'admin')),
    disabled  INTEGER NOT NULL DEFAULT 0,
    -- argon2id PHC string over the hex sha1 of lowercase(username) + '-' + password.
    phc       TEXT NOT NULL,
    created   INTEGER NOT NULL,
    lastlogin INTEGER,
    UNIQUE (org_id, username)
);

CREATE TABLE appkeys (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id         INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    owner_id       INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name           TEXT NOT NULL,
    description    TEXT,
    -- SHA-256 (hex) of the lower-cased key; the key itself is never stored.
    digest         TEXT NOT NULL UNIQUE,
    prefix         TEXT NOT NULL,
    enabled        INTEGER NOT NULL DEFAULT 1,
    disabledreason TEXT,
    created        INTEGER NOT NULL,
    lastused       INTEGER
);
CREATE INDEX appkeys_org ON appkeys (org_id, id);

CREATE TABLE tokens (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id      INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    description TEXT,
    -- SHA-256 (hex) of the token; the token itself is never stored.
    digest      TEXT NOT NULL UNIQUE,
    prefix      TEXT NOT NULL,
    created     INTEGER NOT NULL,
    expires     INTEGER,
    lastused    INTEGER
);
CREATE INDEX tokens_org ON tokens (org_id, id);

CREATE TABLE groups (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id      INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    parent_id   INTEGER REFERENCES groups(id) ON DELETE CASCADE,
    description TEXT NOT NULL,
    created     INTEGER NOT NULL,
    modifiedat  INTEGER NOT NULL,
    modby_id    INTEGER,
    modby_name  TEXT NOT NULL
);
CREATE INDEX groups_org ON groups (org_id, parent_id);
CREATE INDEX groups_parent ON groups (parent_id);

CREATE TABLE subnets (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id      INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    group_id    INTEGER REFERENCES groups(id) ON DELETE CASCADE,
    family      INTEGER NOT NULL CHECK (family IN (4, 6)),
    -- First and last address of the block (keys, see the conventions above); prefix is the family's own length.
    net_start   BLOB NOT NULL,
    net_end     BLOB NOT NULL,
    prefix      INTEGER NOT NULL,
    name        TEXT,
    description TEXT,
    domain      TEXT,
    vlan_id     INTEGER CHECK (vlan_id BETWEEN 1 AND 4094),
    location    TEXT,
    -- Kept by the handlers so lists never recount: the number of address records, and the number of usable
    -- addresses that are recorded or inside an active DHCP range (decimal text: IPv6 counts exceed 64 bits).
    used        INTEGER NOT NULL DEFAULT 0,
    taken       TEXT NOT NULL DEFAULT '0',
    -- Every usable address below this key is taken (NULL: the first usable address), so next-free and available
    -- start here instead of re-reading every record below the first gap. Lowered when one is freed.
    floor       BLOB,
    created     INTEGER NOT NULL,
    modifiedat  INTEGER NOT NULL,
    modby_id    INTEGER,
    modby_name  TEXT NOT NULL
);
CREATE INDEX subnets_org ON subnets (org_id, net_start);
-- REST lists page subnets by id: (org_id, rowid) order.
CREATE INDEX subnets_org_id ON subnets (org_id);
CREATE INDEX subnets_group ON subnets (group_id);

CREATE TABLE fields (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    subnet_id   INTEGER NOT NULL REFERENCES subnets(id) ON DELETE CASCADE,
    name        TEXT NOT NULL COLLATE NOCASE,
    description TEXT,
    type        TEXT NOT NULL CHECK (type IN ('text', 'number', 'boolean', 'select')),
    options     TEXT,
    dflt        TEXT,
    required    INTEGER NOT NULL DEFAULT 0,
    position    INTEGER NOT NULL DEFAULT 0,
    created     INTEGER NOT NULL,
    modifiedat  INTEGER NOT NULL,
    modby_id    INTEGER,
    modby_name  TEXT NOT NULL,
    UNIQUE (subnet_id, name)
);

CREATE TABLE addresses (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    subnet_id        INTEGER NOT NULL REFERENCES subnets(id) ON DELETE CASCADE,
    ip               BLOB NOT NULL,
    hostname         TEXT,
    cname            TEXT,
    mac_address      TEXT,
    status           TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'inactive', 'reserved')),
    is_assigned      INTEGER NOT NULL DEFAULT 1,
    last_seen        INTEGER,
    discovery_source TEXT,
    description      TEXT,
    created          INTEGER NOT NULL,
    modifiedat       INTEGER NOT NULL,
    modby_id         INTEGER,
    modby_name       TEXT NOT NULL,
    -- The backstop of allocation: one record per address per subnet, whatever the handlers do.
    UNIQUE (subnet_id, ip)
);
CREATE INDEX addresses_ip ON addresses (ip);

-- Substring search over address records (search/find): a trigram full-text index of their text columns, kept by
-- the triggers below (they also fire for cascaded deletes). Tables named *_fts are derived data: a restore skips
-- them and the triggers rebuild them.
CREATE VIRTUAL TABLE addresses_fts USING fts5(
    hostname, cname, mac_address, description, content = 'addresses', content_rowid = 'id', tokenize = 'trigram'
);
CREATE TRIGGER addresses_fts_insert AFTER INSERT ON addresses BEGIN
    INSERT INTO addresses_fts (rowid, hostname, cname, mac_address, description)
    VALUES (new.id, new.hostname, new.cname, new.mac_address, new.description);
END;
CREATE TRIGGER addresses_fts_delete AFTER DELETE ON addresses BEGIN
    INSERT INTO addresses_fts (addresses_fts, rowid, hostname, cname, mac_address, description)
    VALUES ('delete', old.id, old.hostname, old.cname, old.mac_address, old.description);
END;
CREATE TRIGGER addresses_fts_update AFTER UPDATE OF hostname, cname, mac_address, description ON addresses BEGIN
    INSERT INTO addresses_fts (addresses_fts, rowid, hostname, cname, mac_address, description)
    VALUES ('delete', old.id, old.hostname, old.cname, old.mac_address, old.description);
    INSERT INTO addresses_fts (rowid, hostname, cname, mac_address, description)
    VALUES (new.id, new.hostname, new.cname, new.mac_address, new.description);
END;

CREATE TABLE field_values (
    address_id INTEGER NOT NULL REFERENCES addresses(id) ON DELETE CASCADE,
    field_id   INTEGER NOT NULL REFERENCES fields(id) ON DELETE CASCADE,
    value      TEXT NOT NULL,
    PRIMARY KEY (address_id, field_id)
) WITHOUT ROWID;
CREATE INDEX field_values_field ON field_values (field_id);

CREATE TABLE dhcp_ranges (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    subnet_id   INTEGER NOT NULL REFERENCES subnets(id) ON DELETE CASCADE,
    start_ip    BLOB NOT NULL,
    end_ip      BLOB NOT NULL,
    description TEXT,
    is_active   INTEGER NOT NULL DEFAULT 1,
    created     INTEGER NOT NULL,
    modifiedat  INTEGER NOT NULL,
    modby_id    INTEGER,
    modby_name  TEXT NOT NULL
);
CREATE INDEX dhcp_ranges_subnet ON dhcp_ranges (subnet_id, start_ip);

CREATE TABLE logs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id      INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    time        INTEGER NOT NULL,
    userid      INTEGER,
    user        TEXT NOT NULL,
    application TEXT NOT NULL,
    respid      TEXT NOT NULL,
    method      TEXT NOT NULL,
    objecttype  TEXT NOT NULL,
    objectid    INTEGER,
    summary     TEXT NOT NULL,
    changes     TEXT
);
CREATE INDEX logs_org ON logs (org_id, id);

-- migration: 2

-- The prefix lengths each org uses per family, with how many subnets have each, kept by the triggers below (they
-- also fire for cascaded deletes). Finding the subnets that contain an address then seeks only the block starts
-- of the lengths in use (subnets::overlapping), not all 33 (IPv4) or 129 (IPv6). Derived data, like the *_fts
-- tables: a restore skips it and the triggers rebuild it.
CREATE TABLE subnet_prefixes (
    org_id  INTEGER NOT NULL,
    family  INTEGER NOT NULL,
    prefix  INTEGER NOT NULL,
    subnets INTEGER NOT NULL,
    PRIMARY KEY (org_id, family, prefix)
) WITHOUT ROWID;
INSERT INTO subnet_prefixes (org_id, family, prefix, subnets)
    SELECT org_id, family, prefix, count(*) FROM subnets GROUP BY org_id, family, prefix;
-- The seeks of subnets::overlapping test family and last address in the index, and read a subnet's row only when
-- it overlaps: most start-address matches (a /24 starting where an enclosing /16 starts) do not.
DROP INDEX subnets_org;
CREATE INDEX subnets_org ON subnets (org_id, net_start, family, net_end);
CREATE TRIGGER subnet_prefixes_insert AFTER INSERT ON subnets BEGIN
    INSERT INTO subnet_prefixes (org_id, family, prefix, subnets) VALUES (new.org_id, new.family, new.prefix, 1)
    ON CONFLICT (org_id, family, prefix) DO UPDATE SET subnets = subnets + 1;
END;
CREATE TRIGGER subnet_prefixes_delete AFTER DELETE ON subnets BEGIN
    UPDATE subnet_prefixes SET subnets = subnets - 1
    WHERE org_id = old.org_id AND family = old.family AND prefix = old.prefix;
    DELETE FROM subnet_prefixes
    WHERE org_id = old.org_id AND family = old.family AND prefix = old.prefix AND subnets <= 0;
END;
CREATE TRIGGER subnet_prefixes_update AFTER UPDATE OF org_id, family, prefix ON subnets BEGIN
    UPDATE subnet_prefixes SET subnets = subnets - 1
    WHERE org_id = old.org_id AND family = old.family AND prefix = old.prefix;
    DELETE FROM subnet_prefixes
    WHERE org_id = old.org_id AND family = old.family AND prefix = old.prefix AND subnets <= 0;
    INSERT INTO subnet_prefixes (org_id, family, prefix, subnets) VALUES (new.org_id, new.family, new.prefix, 1)
    ON CONFLICT (org_id, family, prefix) DO UPDATE SET subnets = subnets + 1;
END;

-- migration: 3

-- Full-text maintenance is deferred to the end of each write transaction. FTS5 writes its pending terms to disk at
-- every SAVEPOINT and RELEASE, so indexing inside the group commit's savepoint per call cost one index segment per
-- call (a sixth of an allocation's CPU). The triggers now queue each change here, old values included for FTS5's
-- 'delete', and the store applies the queue in order with one statement just before COMMIT (store::flush_fts),
-- so a committed transaction never leaves a change unindexed and a batch costs one segment. Derived data: a
-- restore skips it.
DROP TRIGGER addresses_fts_insert;
DROP TRIGGER addresses_fts_delete;
DROP TRIGGER addresses_fts_update;
CREATE TABLE addresses_fts_pending (
    seq         INTEGER PRIMARY KEY,
    -- 'delete' removes the old values of record `id` from the index; NULL indexes the new ones.
    command     TEXT,
    id          INTEGER NOT NULL,
    hostname    TEXT,
    cname       TEXT,
    mac_address TEXT,
    description TEXT
);
-- FTS5 merges index segments as it writes them; merging 16 at a time instead of 4 does a third of the merge work
-- for a steady stream of allocations (whose descriptions repeat the same few trigrams), at the price of a few more
-- segments for a search to read.
INSERT INTO addresses_fts (addresses_fts, rank) VALUES ('automerge', 16);
CREATE TRIGGER addresses_fts_insert AFTER INSERT ON addresses BEGIN
    INSERT INTO addresses_fts_pending (command, id, hostname, cname, mac_address, description)
    VALUES (NULL, new.id, new.hostname, new.cname, new.mac_address, new.description);
END;
CREATE TRIGGER addresses_fts_delete AFTER DELETE ON addresses BEGIN
    INSERT INTO addresses_fts_pending (command, id, hostname, cname, mac_address, description)
    VALUES ('delete', old.id, old.hostname, old.cname, old.mac_address, old.description);
END;
CREATE TRIGGER addresses_fts_update AFTER UPDATE OF hostname, cname, mac_address, description ON addresses BEGIN
    INSERT INTO addresses_fts_pending (command, id, hostname, cname, mac_address, description)
    VALUES ('delete', old.id, old.hostname, old.cname, old.mac_address, old.description);
    INSERT INTO addresses_fts_pending (command, id, hostname, cname, mac_address, description)
    VALUES (NULL, new.id, new.hostname, new.cname, new.mac_address, new.description);
END;

-- migration: 4

-- A counter that moves whenever a credential or what it grants changes (the triggers below), so a server may
-- remember what a token or an app key with userdata authenticated to and trust it while the counter is the one it
-- read with it (dispatch::authenticate; one row read per call instead of a three-table join and, for userdata,
-- an HMAC of the password hash). Every change a credential check depends on moves it: deleting a token, app key,
-- user or org (cascades too), and changing the columns the check reads. Last-use stamps (lastused, lastlogin) and
-- descriptive columns do not. An added row needs no move: nothing is remembered about what was not found. A
-- column a credential check starts to read must be added to its trigger here. The counter is the live database's
-- own: a restore does not copy it (its deletes and inserts move it).
CREATE TABLE credential_epoch (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n  INTEGER NOT NULL
);
INSERT INTO credential_epoch (id, n) VALUES (1, 0);
CREATE TRIGGER credential_epoch_orgs_update AFTER UPDATE OF id, identifier, operator ON orgs BEGIN
    UPDATE credential_epoch SET n = n + 1;
END;
CREATE TRIGGER credential_epoch_orgs_delete AFTER DELETE ON orgs BEGIN
    UPDATE credential_epoch SET n = n + 1;
END;
CREATE TRIGGER credential_epoch_users_update AFTER UPDATE OF id, org_id, username, level, disabled, phc ON users BEGIN
    UPDATE credential_epoch SET n = n + 1;
END;
CREATE TRIGGER credential_epoch_users_delete AFTER DELETE ON users BEGIN
    UPDATE credential_epoch SET n = n + 1;
END;
CREATE TRIGGER credential_epoch_appkeys_update AFTER UPDATE OF id, org_id, name, digest, enabled ON appkeys BEGIN
    UPDATE credential_epoch SET n = n + 1;
END;
CREATE TRIGGER credential_epoch_appkeys_delete AFTER DELETE ON appkeys BEGIN
    UPDATE credential_epoch SET n = n + 1;
END;
CREATE TRIGGER credential_epoch_tokens_update AFTER UPDATE OF id, org_id, user_id, digest, prefix, expires ON tokens BEGIN
    UPDATE credential_epoch SET n = n + 1;
END;
CREATE TRIGGER credential_epoch_tokens_delete AFTER DELETE ON tokens BEGIN
    UPDATE credential_epoch SET n = n + 1;
END;

-- migration: 5

-- The containment seeks (subnets::holders, subnets::overlapping) find a subnet in this index by its start and
-- last address, then tested its length and read its group from the table row: with both in the index, finding
-- where an address lives (`GET /api/v1/ip/{ip}`, search/ip status) reads no subnet row at all.
DROP INDEX subnets_org;
CREATE INDEX subnets_org ON subnets (org_id, net_start, family, net_end, prefix, group_id);

-- migration: 6

-- Where an address lives, as the REST API shows it (`GET /api/v1/ip/{ip}`, search/ip status `brief`), found in the
-- index alone: the `UNIQUE (subnet_id, ip)` seek led to the record's row, a second random page per lookup. This
-- index holds every column of the brief record after its key (the id too: every index entry ends with the rowid),
-- so the lookup reads one leaf; the unique index stays as the allocation backstop. It costs about 66 MB per million
-- records and one more index entry per record written (BENCHMARKS.md). A column added to the brief record
-- (addresses::brief_columns_of) must be added here, or the lookup reads the row (a unit test checks the plan).
CREATE INDEX addresses_brief ON addresses (
    subnet_id, ip, hostname, cname, mac_address, status, is_assigned, last_seen, discovery_source, description
);

-- migration: 7

-- The free-space engine (subnets::with_taken) reads the runs of consecutive record addresses of a subnet instead
-- of its records, so finding the first free address, or a page of free ones, reads the run that holds the start
-- and the runs after it: one seek, then one run per gap passed over, however many records there are and in
-- whatever order they were added, moved, deleted or restored. (The `floor` it replaces was the lowest possibly
-- free key, moved one step per allocation: records filed out of order left it at the start, and every peek read
-- every record above it.) Runs are maximal: two runs of a subnet never touch, so every gap between them is free
-- unless an active DHCP range covers it. Derived data, kept by the triggers below for every insert, delete
-- (cascades too) and change of subnet or address of a record: a restore skips it and the triggers rebuild it.
-- The triggers step keys with `key_add(key, n)` (store::add_functions; NULL past either end of the key space), so
-- a connection that writes records needs the server's functions.
ALTER TABLE subnets DROP COLUMN floor;
CREATE TABLE address_runs (
    subnet_id INTEGER NOT NULL,
    first_ip  BLOB NOT NULL,
    last_ip   BLOB NOT NULL,
    PRIMARY KEY (subnet_id, first_ip)
) WITHOUT ROWID;
-- Consecutive keys of a subnet share `ip - (its rank - 1)`: one group per run.
INSERT INTO address_runs (subnet_id, first_ip, last_ip)
    SELECT subnet_id, min(ip), max(ip)
    FROM (SELECT subnet_id, ip, key_add(ip, 1 - row_number() OVER (PARTITION BY subnet_id ORDER BY ip)) AS run
          FROM addresses)
    GROUP BY subnet_id, run;
-- One record address taken (`added`) or freed in a subnet: inserting a row here runs the trigger that keeps the
-- runs, so the three triggers on addresses share its two bodies. Nothing is stored.
CREATE VIEW address_run_changes (subnet_id, ip, added) AS SELECT NULL, NULL, NULL WHERE 0;
CREATE TRIGGER address_runs_take INSTEAD OF INSERT ON address_run_changes WHEN new.added BEGIN
    -- A new run, unless the run just below ends at ip - 1; it reaches to the end of the run just above, if any.
    INSERT INTO address_runs (subnet_id, first_ip, last_ip)
    SELECT new.subnet_id, new.ip,
           coalesce((SELECT last_ip FROM address_runs
                     WHERE subnet_id = new.subnet_id AND first_ip = key_add(new.ip, 1)), new.ip)
    WHERE NOT EXISTS (SELECT 1 FROM (SELECT last_ip FROM address_runs
                                     WHERE subnet_id = new.subnet_id AND first_ip < new.ip
                                     ORDER BY first_ip DESC LIMIT 1)
                      WHERE last_ip = key_add(new.ip, -1));
    -- Else the run below grows over ip and the run above.
    UPDATE address_runs
    SET last_ip = coalesce((SELECT last_ip FROM address_runs
                            WHERE subnet_id = new.subnet_id AND first_ip = key_add(new.ip, 1)), new.ip)
    WHERE subnet_id = new.subnet_id AND last_ip = key_add(new.ip, -1)
      AND first_ip = (SELECT max(first_ip) FROM address_runs WHERE subnet_id = new.subnet_id AND first_ip < new.ip);
    -- The run above is now part of ip's.
    DELETE FROM address_runs WHERE subnet_id = new.subnet_id AND first_ip = key_add(new.ip, 1);
END;
CREATE TRIGGER address_runs_free INSTEAD OF INSERT ON address_run_changes WHEN NOT new.added BEGIN
    -- The part of ip's run above ip becomes a run of its own,
    INSERT INTO address_runs (subnet_id, first_ip, last_ip)
    SELECT new.subnet_id, key_add(new.ip, 1), last_ip
    FROM (SELECT last_ip FROM address_runs
          WHERE subnet_id = new.subnet_id AND first_ip <= new.ip ORDER BY first_ip DESC LIMIT 1)
    WHERE last_ip > new.ip;
    -- the part below ends at ip - 1,
    UPDATE address_runs SET last_ip = key_add(new.ip, -1)
    WHERE subnet_id = new.subnet_id AND last_ip >= new.ip
      AND first_ip = (SELECT max(first_ip) FROM address_runs WHERE subnet_id = new.subnet_id AND first_ip < new.ip);
    -- and a run starting at ip is gone.
    DELETE FROM address_runs WHERE subnet_id = new.subnet_id AND first_ip = new.ip;
END;
CREATE TRIGGER address_runs_insert AFTER INSERT ON addresses BEGIN
    INSERT INTO address_run_changes (subnet_id, ip, added) VALUES (new.subnet_id, new.ip, 1);
END;
CREATE TRIGGER address_runs_delete AFTER DELETE ON addresses BEGIN
    INSERT INTO address_run_changes (subnet_id, ip, added) VALUES (old.subnet_id, old.ip, 0);
END;
CREATE TRIGGER address_runs_update AFTER UPDATE OF subnet_id, ip ON addresses
WHEN old.subnet_id IS NOT new.subnet_id OR old.ip IS NOT new.ip BEGIN
    INSERT INTO address_run_changes (subnet_id, ip, added) VALUES (old.subnet_id, old.ip, 0), (new.subnet_id, new.ip, 1);
END;

-- migration: 8
-- Records by address in the order replies give them (address, then subnet): `ipaddress/get {"ip"}` and
-- `search/ip` of a block read the index in order and sort nothing (an address determines its family: IPv4 keys
-- are IPv4-mapped, and no IPv6 subnet may hold that block).
DROP INDEX addresses_ip;
CREATE INDEX addresses_ip ON addresses (ip, subnet_id);

-- migration: 9
-- Each group's number of subnets, kept by triggers: `groups/get` shows it for every group, and counting the
-- `subnets_group` entries of each group read every subnet of the org (10,000 subnets in 40 groups: 1.5M
-- instructions a call).
ALTER TABLE groups ADD COLUMN subnet_count INTEGER NOT NULL DEFAULT 0;
UPDATE groups SET subnet_count = (SELECT count(*) FROM subnets s WHERE s.group_id = groups.id);
CREATE TRIGGER groups_count_insert AFTER INSERT ON subnets WHEN new.group_id IS NOT NULL BEGIN
    UPDATE groups SET subnet_count = subnet_count + 1 WHERE id = new.group_id;
END;
CREATE TRIGGER groups_count_delete AFTER DELETE ON subnets WHEN old.group_id IS NOT NULL BEGIN
    UPDATE groups SET subnet_count = subnet_count - 1 WHERE id = old.group_id;
END;
CREATE TRIGGER groups_count_move AFTER UPDATE OF group_id ON subnets
WHEN old.group_id IS NOT new.group_id BEGIN
    UPDATE groups SET subnet_count = subnet_count - 1 WHERE id = old.group_id;
    UPDATE groups SET subnet_count = subnet_count + 1 WHERE id = new.group_id;
END;

-- migration: 10
-- An org's groups in the order of `groups/get` with `sort` (description, any case, then id): read in order, not
-- sorted at every call.
CREATE INDEX groups_sorted ON groups (org_id, description COLLATE NOCASE, id);

-- migration: 11
-- `ipamd user unlock` ends a user's lockout from another process: the lockout counters live in the server's memory
-- keyed by org, username and this count (auth::Auth::lockout_key), so raising it starts the user afresh, and the
-- epoch it moves makes every server read it again.
ALTER TABLE users ADD COLUMN unlocks INTEGER NOT NULL DEFAULT 0;
DROP TRIGGER credential_epoch_users_update;
CREATE TRIGGER credential_epoch_users_update AFTER UPDATE OF id, org_id, username, level, disabled, phc, unlocks ON users BEGIN
    UPDATE credential_epoch SET n = n + 1;
END;

-- migration: 12
-- Idempotency keys (`Idempotency-Key` on REST, `requestkey` in the envelope): the answer of each keyed write,
-- written in the write's own savepoint, so the change and its key commit together or not at all. A key belongs to
-- its caller: the org, and the user (`caller` is `user:<id>`) or `API_TOKENS`. `fingerprint` is the SHA-256 of the
-- request's target and canonical parameters; `status` and `body` the answer a retry gets again. Rows older than
-- IPAMD_IDEMPOTENCY_SECONDS are ignored and purged in small batches by later keyed writes. A restore copies them
-- with the records they answered for.
CREATE TABLE request_keys (
    org_id      INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    user_id     INTEGER REFERENCES users(id) ON DELETE CASCADE,
    caller      TEXT NOT NULL,
    key         TEXT NOT NULL,
    fingerprint BLOB NOT NULL,
    status      INTEGER NOT NULL,
    body        BLOB NOT NULL,
    created     INTEGER NOT NULL,
    PRIMARY KEY (org_id, caller, key)
);
CREATE INDEX request_keys_created ON request_keys (created);
CREATE INDEX request_keys_user ON request_keys (user_id);
-- Record versions (methods.md, Versions): each record's `version` tells whether it changed since a client read it
-- (REST's ETag and If-Match, the envelope's `version`). `version_seq` counts write transactions: every call in the
-- group commit (a savepoint each) and every other write transaction moves it first (store.rs). A record is made at
-- version 1; a change of its own fields (a subnet's counts included: they are part of its record) sets its version
-- to the count of the write that changed it, once however many statements of that write change it: so versions only
-- grow, a version names one state of the record, and one call moves it once. (A record restored from another
-- database may hold a version above the count: then each change adds one.) The stamps a call leaves (`lastlogin`,
-- `lastused`) do not move it. Kept by triggers, whichever write changes the row. A restore keeps the count.
CREATE TABLE version_seq (n INTEGER NOT NULL);
INSERT INTO version_seq (n) VALUES (1);
ALTER TABLE subnets ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE addresses ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE dhcp_ranges ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE groups ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE fields ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE users ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE appkeys ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE tokens ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
CREATE TRIGGER subnets_version AFTER UPDATE ON subnets WHEN new.version = old.version BEGIN
    UPDATE subnets SET version = (SELECT CASE WHEN old.version <= n THEN n ELSE old.version + 1 END FROM version_seq) WHERE id = new.id;
END;
CREATE TRIGGER addresses_version AFTER UPDATE ON addresses WHEN new.version = old.version BEGIN
    UPDATE addresses SET version = (SELECT CASE WHEN old.version <= n THEN n ELSE old.version + 1 END FROM version_seq) WHERE id = new.id;
END;
CREATE TRIGGER dhcp_ranges_version AFTER UPDATE ON dhcp_ranges WHEN new.version = old.version BEGIN
    UPDATE dhcp_ranges SET version = (SELECT CASE WHEN old.version <= n THEN n ELSE old.version + 1 END FROM version_seq) WHERE id = new.id;
END;
CREATE TRIGGER groups_version AFTER UPDATE ON groups WHEN new.version = old.version BEGIN
    UPDATE groups SET version = (SELECT CASE WHEN old.version <= n THEN n ELSE old.version + 1 END FROM version_seq) WHERE id = new.id;
END;
CREATE TRIGGER fields_version AFTER UPDATE ON fields WHEN new.version = old.version BEGIN
    UPDATE fields SET version = (SELECT CASE WHEN old.version <= n THEN n ELSE old.version + 1 END FROM version_seq) WHERE id = new.id;
END;
CREATE TRIGGER users_version AFTER UPDATE OF org_id, username, email, realname, level, disabled, phc ON users WHEN new.version = old.version BEGIN
    UPDATE users SET version = (SELECT CASE WHEN old.version <= n THEN n ELSE old.version + 1 END FROM version_seq) WHERE id = new.id;
END;
CREATE TRIGGER appkeys_version AFTER UPDATE OF org_id, owner_id, name, description, enabled, disabledreason ON appkeys WHEN new.version = old.version BEGIN
    UPDATE appkeys SET version = (SELECT CASE WHEN old.version <= n THEN n ELSE old.version + 1 END FROM version_seq) WHERE id = new.id;
END;
CREATE TRIGGER tokens_version AFTER UPDATE OF org_id, user_id, description, expires ON tokens WHEN new.version = old.version BEGIN
    UPDATE tokens SET version = (SELECT CASE WHEN old.version <= n THEN n ELSE old.version + 1 END FROM version_seq) WHERE id = new.id;
END;
-- A record's custom field values are part of it.
CREATE TRIGGER field_values_version_insert AFTER INSERT ON field_values BEGIN
    UPDATE addresses SET version = (SELECT CASE WHEN addresses.version <= n THEN n ELSE addresses.version + 1 END FROM version_seq) WHERE id = new.address_id;
END;
CREATE TRIGGER field_values_version_update AFTER UPDATE ON field_values BEGIN
    UPDATE addresses SET version = (SELECT CASE WHEN addresses.version <= n THEN n ELSE addresses.version + 1 END FROM version_seq) WHERE id = new.address_id;
END;
CREATE TRIGGER field_values_version_delete AFTER DELETE ON field_values BEGIN
    UPDATE addresses SET version = (SELECT CASE WHEN addresses.version <= n THEN n ELSE addresses.version + 1 END FROM version_seq) WHERE id = old.address_id;
END;

-- migration: 13
-- The change feed (`changes/get`, `GET /api/v1/changes`) and webhooks. `changes` is written by `Ctx::log` in the
-- transaction of each change, beside its audit entry: its AUTOINCREMENT id, never reused, is the feed's cursor, in
-- commit order (one writer; ids are taken in the order the writes commit). Apart from `logs`, so `org/delete`
-- (which deletes an org's audit log with the org) does not take rows other orgs' cursors sit between, and with no
-- foreign key: `org/delete` deletes the org's own rows itself. A restore does not copy it (the live feed goes on,
-- with a `restored` entry in every org's feed) and the retention purge deletes from its oldest end, noting the
-- highest id purged in `changes_purged` so a cursor behind it is told it expired.
CREATE TABLE changes (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id      INTEGER NOT NULL,
    time        INTEGER NOT NULL,
    userid      INTEGER,
    user        TEXT NOT NULL,
    application TEXT NOT NULL,
    respid      TEXT NOT NULL,
    method      TEXT NOT NULL,
    objecttype  TEXT NOT NULL,
    objectid    INTEGER,
    action      TEXT NOT NULL,
    summary     TEXT NOT NULL,
    before      TEXT,
    after       TEXT,
    detail      TEXT
);
CREATE INDEX changes_org ON changes (org_id, id);
CREATE TABLE changes_purged (id INTEGER NOT NULL);
INSERT INTO changes_purged (id) VALUES (0);

-- Webhook subscriptions of an org. The secret is kept as issued (`whsec_…`): the server must compute HMACs with it,
-- so a digest would not do (SECURITY.md). Filters: comma-separated object types and actions (empty: all), one
-- subnet or group (NULL: any).
CREATE TABLE webhooks (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id      INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    url         TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    objecttypes TEXT NOT NULL DEFAULT '',
    actions     TEXT NOT NULL DEFAULT '',
    subnet_id   INTEGER,
    group_id    INTEGER,
    secret      TEXT NOT NULL,
    enabled     INTEGER NOT NULL DEFAULT 1,
    created     INTEGER NOT NULL
);
CREATE INDEX webhooks_org ON webhooks (org_id, enabled);

-- The outbox and delivery log: one row per change and matching enabled subscription, written by `Ctx::log` in the
-- change's transaction; the delivery task sends each subscription's oldest pending row first. `next_attempt` is in
-- unix milliseconds.
CREATE TABLE webhook_deliveries (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook_id   INTEGER NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    change_id    INTEGER NOT NULL,
    event        TEXT NOT NULL,
    payload      TEXT NOT NULL,
    status       TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_attempt INTEGER NOT NULL,
    last_status  INTEGER,
    last_error   TEXT,
    created      INTEGER NOT NULL,
    updated      INTEGER NOT NULL
);
CREATE INDEX webhook_deliveries_log ON webhook_deliveries (webhook_id, id);
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (webhook_id, id) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_time ON webhook_deliveries (updated) WHERE status != 'pending';

-- migration: 14
-- Pages of groups, users and field definitions (page, perpage) are read in their list's order from an index, so a
-- page costs its own rows and no sort of the whole list: groups and users by id within the org ((org_id, rowid)),
-- a subnet's field definitions by position, then id.
CREATE INDEX groups_org_id ON groups (org_id);
CREATE INDEX users_org_id ON users (org_id);
CREATE INDEX fields_subnet ON fields (subnet_id, position);
-- The `ETag` a keyed REST write answered with (one record's version), which a retry gets again with the body.
ALTER TABLE request_keys ADD COLUMN etag TEXT;

-- migration: 15
-- Pools (container subnets, methods.md "Pools"): a subnet with `pool` = 1 holds child subnets instead of address
-- records; a child names its pool in `parent_id` and lies strictly inside it, in its group. `subnets/delete` deletes
-- a pool's subtree itself (with `recursive`), so the column needs no foreign key (nor could a restore of an older
-- backup's copy drop it). `child_count` is kept by the triggers below, as the groups' `subnet_count`, so a record
-- never counts its children.
ALTER TABLE subnets ADD COLUMN parent_id INTEGER;
ALTER TABLE subnets ADD COLUMN pool INTEGER NOT NULL DEFAULT 0;
ALTER TABLE subnets ADD COLUMN child_count INTEGER NOT NULL DEFAULT 0;
-- A pool's children in address order: the walk of `subnets/get {parent}` and the recursive deletes.
CREATE INDEX subnets_parent ON subnets (parent_id, net_start);
CREATE TRIGGER subnets_children_insert AFTER INSERT ON subnets WHEN new.parent_id IS NOT NULL BEGIN
    UPDATE subnets SET child_count = child_count + 1 WHERE id = new.parent_id;
END;
CREATE TRIGGER subnets_children_delete AFTER DELETE ON subnets WHEN old.parent_id IS NOT NULL BEGIN
    UPDATE subnets SET child_count = child_count - 1 WHERE id = old.parent_id;
END;
CREATE TRIGGER subnets_children_move AFTER UPDATE OF parent_id ON subnets
WHEN old.parent_id IS NOT new.parent_id BEGIN
    UPDATE subnets SET child_count = child_count - 1 WHERE id = old.parent_id;
    UPDATE subnets SET child_count = child_count + 1 WHERE id = new.parent_id;
END;
-- The free space of each pool as its maximal aligned free blocks (a buddy allocator's free lists): every address of
-- a pool that no child holds lies in exactly one row, and no row's block could grow into a free aligned block twice
-- its size. Taking a child splits the one row that holds it (at most one new row per bit of difference), freeing
-- one merges it with its free buddies, so `subnets/available` and allocation read rows by index seeks, never the
-- children (src/methods/subnets/pools.rs). Kept by the handlers (the block arithmetic is Rust's); a restore copies it with the
-- subnets it describes.
CREATE TABLE pool_free (
    pool_id INTEGER NOT NULL REFERENCES subnets(id) ON DELETE CASCADE,
    start   BLOB NOT NULL,
    prefix  INTEGER NOT NULL,
    PRIMARY KEY (pool_id, start)
) WITHOUT ROWID;
-- First-fit, best-fit and last seek the lowest or highest block of each length that can hold the one asked for.
CREATE INDEX pool_free_prefix ON pool_free (pool_id, prefix, start);
-- How many free blocks each pool has of each length, kept by the triggers below: the exact count of free /N blocks
-- and the space the children cover come from at most 129 rows, however fragmented the pool. Derived data: a restore
-- skips it and the triggers rebuild it from the rows of pool_free it copies.
CREATE TABLE pool_free_counts (
    pool_id INTEGER NOT NULL,
    prefix  INTEGER NOT NULL,
    blocks  INTEGER NOT NULL,
    PRIMARY KEY (pool_id, prefix)
) WITHOUT ROWID;
CREATE TRIGGER pool_free_insert AFTER INSERT ON pool_free BEGIN
    INSERT INTO pool_free_counts (pool_id, prefix, blocks) VALUES (new.pool_id, new.prefix, 1)
    ON CONFLICT (pool_id, prefix) DO UPDATE SET blocks = blocks + 1;
END;
CREATE TRIGGER pool_free_delete AFTER DELETE ON pool_free BEGIN
    UPDATE pool_free_counts SET blocks = blocks - 1 WHERE pool_id = old.pool_id AND prefix = old.prefix;
    DELETE FROM pool_free_counts WHERE pool_id = old.pool_id AND prefix = old.prefix AND blocks <= 0;
END;

-- migration: 16

-- Sessions of the web UI (src/ui.rs), kept here so that every process serving the database knows them. The cookie
-- holds a random id; only its SHA-256 digest is stored. `phc` is the SHA-256 of the user's password hash at
-- sign-in: a session whose user's password changed since no longer authenticates. A disabled user's sessions are
-- refused by the check (credentials.rs), a deleted user's are deleted with it. `lastseen` moves at most once a
-- minute (the idle timeout); `created` bounds the session's whole life (the absolute timeout).
CREATE TABLE sessions (
    id       INTEGER PRIMARY KEY,
    digest   TEXT NOT NULL UNIQUE,
    user_id  INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    phc      TEXT NOT NULL,
    created  INTEGER NOT NULL,
    lastseen INTEGER NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_lastseen ON sessions (lastseen);

-- migration: 17

-- Failed logins of the users that exist, shared by every process on the database (src/credentials.rs): the
-- lockout counts the guesses made through all of them, and survives a restart. Keyed by the user's lockout digest
-- (auth::Auth::lockout_key: org, user and unlock count, so `ipamd user unlock` leaves the row behind), never by
-- claimed text; names that name nobody stay in each process's bounded memory. `failures` counts since `since`
-- (the window starts at the first failure); the failure that reaches the limit sets `locked_until` and starts a
-- new window, so a row whose `since` is a window old has expired: failed logins delete a batch of those.
CREATE TABLE login_failures (
    digest       BLOB PRIMARY KEY,
    since        INTEGER NOT NULL,
    failures     INTEGER NOT NULL,
    locked_until INTEGER
) WITHOUT ROWID;
CREATE INDEX login_failures_since ON login_failures (since);

-- migration: 18

-- Nothing changes here: a restore defers SQLite's foreign key checks to its commit with `PRAGMA
-- defer_foreign_keys`. The twin in schema.pg.sql makes PostgreSQL's foreign keys deferrable, for the same.

-- migration: 19
-- Nothing changes in SQLite: the twin of schema.pg.sql's migration 19, which bounds the key of PostgreSQL's
-- `groups_sorted` index (a B-tree entry there holds at most about 2.7 kB; SQLite's index has no such limit).

-- migration: 20
-- Nothing changes in SQLite: the twin of schema.pg.sql's migration 20, statistics of the trigrams of the columns
-- search/find matches (PostgreSQL's trigram indexes need them to leave common words out; FTS5 does not), trigram
-- indexes on the subnets' text (SQLite scans the org's subnets) and an index of the subnets in address order
-- (SQLite sorts the narrow rows of a page's ids).

-- migration: 21
-- Nothing changes in SQLite: the twin of schema.pg.sql's migration 21, PostgreSQL's `count_add` (here a function
-- of the server's, store::add_functions).
