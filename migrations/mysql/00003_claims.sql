-- Claims and their decisions, evidence uploads, pioneer posts and their assignments.
-- +goose Up
CREATE TABLE uploads (
  id           BIGINT      NOT NULL AUTO_INCREMENT,
  owner_id     BIGINT      NOT NULL,
  content_type VARCHAR(32) NOT NULL,
  size         BIGINT      NOT NULL,
  sha256       CHAR(64)    CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  storage_key  VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  created_at   DATETIME(6) NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uq_uploads_key (storage_key),
  KEY idx_uploads_owner (owner_id),
  CONSTRAINT fk_uploads_owner FOREIGN KEY (owner_id) REFERENCES members (id)
) ENGINE=InnoDB;

CREATE TABLE posts (
  id         BIGINT        NOT NULL AUTO_INCREMENT,
  branch_id  BIGINT        NOT NULL,
  name       VARCHAR(100)  NOT NULL,
  duties     VARCHAR(1000) NOT NULL DEFAULT '',
  created_by BIGINT        NULL,
  created_at DATETIME(6)   NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uq_posts_branch_name (branch_id, name),
  CONSTRAINT fk_posts_branch FOREIGN KEY (branch_id) REFERENCES orgs (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE post_assignments (
  id         BIGINT        NOT NULL AUTO_INCREMENT,
  post_id    BIGINT        NOT NULL,
  member_id  BIGINT        NOT NULL,
  starts_on  CHAR(10)      CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  ends_on    CHAR(10)      CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  commitment VARCHAR(1000) NOT NULL,
  created_by BIGINT        NULL,
  created_at DATETIME(6)   NOT NULL,
  PRIMARY KEY (id),
  KEY idx_post_assignments_member (member_id),
  KEY idx_post_assignments_post (post_id),
  CONSTRAINT fk_post_assignments_post FOREIGN KEY (post_id) REFERENCES posts (id),
  CONSTRAINT fk_post_assignments_member FOREIGN KEY (member_id) REFERENCES members (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE claims (
  id               BIGINT       NOT NULL AUTO_INCREMENT,
  member_id        BIGINT       NOT NULL,
  branch_id        BIGINT       NOT NULL,
  rule_code        VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  rule_version     INT          NOT NULL,
  period           CHAR(7)      CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  occurred_on      CHAR(10)     CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  quantity         BIGINT       NOT NULL,
  points_requested BIGINT       NOT NULL,
  status           VARCHAR(16)  NOT NULL,
  note             VARCHAR(500) NOT NULL DEFAULT '',
  assignment_id    BIGINT       NULL,
  points_awarded   BIGINT       NULL,
  decided_by       BIGINT       NULL,
  decided_at       DATETIME(6)  NULL,
  reason           VARCHAR(500) NULL,
  idempotency_key  VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NULL,
  request_hash     CHAR(64)     CHARACTER SET ascii COLLATE ascii_bin NOT NULL DEFAULT '',
  created_at       DATETIME(6)  NOT NULL,
  updated_at       DATETIME(6)  NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uq_claims_idempotency (member_id, idempotency_key),
  KEY idx_claims_branch_status (branch_id, status, id),
  KEY idx_claims_member (member_id, id),
  CONSTRAINT fk_claims_member FOREIGN KEY (member_id) REFERENCES members (id),
  CONSTRAINT fk_claims_branch FOREIGN KEY (branch_id) REFERENCES orgs (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE claim_evidence (
  claim_id  BIGINT NOT NULL,
  upload_id BIGINT NOT NULL,
  UNIQUE KEY uq_claim_evidence (claim_id, upload_id),
  KEY idx_claim_evidence_upload (upload_id),
  CONSTRAINT fk_claim_evidence_claim FOREIGN KEY (claim_id) REFERENCES claims (id),
  CONSTRAINT fk_claim_evidence_upload FOREIGN KEY (upload_id) REFERENCES uploads (id)
) ENGINE=InnoDB;

-- +goose Down
DROP TABLE claim_evidence;
DROP TABLE claims;
DROP TABLE post_assignments;
DROP TABLE posts;
DROP TABLE uploads;
