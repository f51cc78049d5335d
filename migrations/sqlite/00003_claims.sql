-- Claims and their decisions, evidence uploads, pioneer posts and their assignments.
-- Index names match the MySQL migration.
-- +goose Up
CREATE TABLE uploads (
  id           INTEGER      NOT NULL PRIMARY KEY AUTOINCREMENT,
  owner_id     INTEGER      NOT NULL REFERENCES members (id),
  content_type VARCHAR(32)  NOT NULL,
  size         INTEGER      NOT NULL,
  sha256       CHAR(64)     NOT NULL,
  storage_key  VARCHAR(128) NOT NULL,
  created_at   DATETIME     NOT NULL
);
CREATE UNIQUE INDEX uq_uploads_key ON uploads (storage_key);
CREATE INDEX idx_uploads_owner ON uploads (owner_id);

CREATE TABLE posts (
  id         INTEGER       NOT NULL PRIMARY KEY AUTOINCREMENT,
  branch_id  INTEGER       NOT NULL REFERENCES orgs (id),
  name       VARCHAR(100)  NOT NULL,
  duties     VARCHAR(1000) NOT NULL DEFAULT '',
  created_by INTEGER       NULL,
  created_at DATETIME      NOT NULL
);
CREATE UNIQUE INDEX uq_posts_branch_name ON posts (branch_id, name);

CREATE TABLE post_assignments (
  id         INTEGER       NOT NULL PRIMARY KEY AUTOINCREMENT,
  post_id    INTEGER       NOT NULL REFERENCES posts (id),
  member_id  INTEGER       NOT NULL REFERENCES members (id),
  starts_on  CHAR(10)      NOT NULL,
  ends_on    CHAR(10)      NOT NULL,
  commitment VARCHAR(1000) NOT NULL,
  created_by INTEGER       NULL,
  created_at DATETIME      NOT NULL
);
CREATE INDEX idx_post_assignments_member ON post_assignments (member_id);
CREATE INDEX idx_post_assignments_post ON post_assignments (post_id);

CREATE TABLE claims (
  id               INTEGER      NOT NULL PRIMARY KEY AUTOINCREMENT,
  member_id        INTEGER      NOT NULL REFERENCES members (id),
  branch_id        INTEGER      NOT NULL REFERENCES orgs (id),
  rule_code        VARCHAR(64)  NOT NULL,
  rule_version     INTEGER      NOT NULL,
  period           CHAR(7)      NOT NULL,
  occurred_on      CHAR(10)     NOT NULL,
  quantity         INTEGER      NOT NULL,
  points_requested INTEGER      NOT NULL,
  status           VARCHAR(16)  NOT NULL,
  note             VARCHAR(500) NOT NULL DEFAULT '',
  assignment_id    INTEGER      NULL,
  points_awarded   INTEGER      NULL,
  decided_by       INTEGER      NULL,
  decided_at       DATETIME     NULL,
  reason           VARCHAR(500) NULL,
  idempotency_key  VARCHAR(128) NULL,
  request_hash     CHAR(64)     NOT NULL DEFAULT '',
  created_at       DATETIME     NOT NULL,
  updated_at       DATETIME     NOT NULL
);
CREATE UNIQUE INDEX uq_claims_idempotency ON claims (member_id, idempotency_key);
CREATE INDEX idx_claims_branch_status ON claims (branch_id, status, id);
CREATE INDEX idx_claims_member ON claims (member_id, id);

CREATE TABLE claim_evidence (
  claim_id  INTEGER NOT NULL REFERENCES claims (id),
  upload_id INTEGER NOT NULL REFERENCES uploads (id)
);
CREATE UNIQUE INDEX uq_claim_evidence ON claim_evidence (claim_id, upload_id);
CREATE INDEX idx_claim_evidence_upload ON claim_evidence (upload_id);

-- +goose Down
DROP TABLE claim_evidence;
DROP TABLE claims;
DROP TABLE post_assignments;
DROP TABLE posts;
DROP TABLE uploads;
