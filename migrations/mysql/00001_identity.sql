-- Identity: the org tree, the roster, roles, invite codes, refresh tokens and the audit log.
-- members.auth_rev changes whenever what a member may do changes (roles, status, branch,
-- or an org they depend on); servers cache the caller's roles keyed by it.
-- +goose Up
CREATE TABLE orgs (
  id         BIGINT       NOT NULL AUTO_INCREMENT,
  parent_id  BIGINT       NULL,
  kind       VARCHAR(20)  NOT NULL,
  name       VARCHAR(100) NOT NULL,
  path       VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL DEFAULT '',
  depth      INT          NOT NULL DEFAULT 0,
  created_at DATETIME(6)  NOT NULL,
  updated_at DATETIME(6)  NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uq_orgs_parent_name (parent_id, name),
  KEY idx_orgs_path (path),
  CONSTRAINT fk_orgs_parent FOREIGN KEY (parent_id) REFERENCES orgs (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE members (
  id            BIGINT       NOT NULL AUTO_INCREMENT,
  member_no     VARCHAR(32)  NOT NULL,
  name          VARCHAR(64)  NOT NULL,
  branch_id     BIGINT       NOT NULL,
  group_id      BIGINT       NULL,
  status        VARCHAR(16)  NOT NULL DEFAULT 'active',
  username      VARCHAR(64)  NULL,
  password_hash VARCHAR(100) NULL,
  wechat_openid VARCHAR(128) NULL,
  auth_rev      BIGINT       NOT NULL DEFAULT 0,
  created_at    DATETIME(6)  NOT NULL,
  updated_at    DATETIME(6)  NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uq_members_member_no (member_no),
  UNIQUE KEY uq_members_username (username),
  UNIQUE KEY uq_members_wechat_openid (wechat_openid),
  KEY idx_members_branch (branch_id),
  KEY idx_members_group (group_id),
  CONSTRAINT fk_members_branch FOREIGN KEY (branch_id) REFERENCES orgs (id),
  CONSTRAINT fk_members_group FOREIGN KEY (group_id) REFERENCES orgs (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE member_roles (
  id         BIGINT      NOT NULL AUTO_INCREMENT,
  member_id  BIGINT      NOT NULL,
  role       VARCHAR(16) NOT NULL,
  org_id     BIGINT      NOT NULL,
  created_at DATETIME(6) NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uq_member_roles (member_id, role, org_id),
  KEY idx_member_roles_org (org_id),
  CONSTRAINT fk_member_roles_member FOREIGN KEY (member_id) REFERENCES members (id),
  CONSTRAINT fk_member_roles_org FOREIGN KEY (org_id) REFERENCES orgs (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE invite_codes (
  id         BIGINT      NOT NULL AUTO_INCREMENT,
  member_id  BIGINT      NOT NULL,
  code_hash  CHAR(64)    CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  expires_at DATETIME(6) NOT NULL,
  used_at    DATETIME(6) NULL,
  revoked_at DATETIME(6) NULL,
  created_by BIGINT      NOT NULL,
  created_at DATETIME(6) NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uq_invite_codes_hash (code_hash),
  KEY idx_invite_codes_member (member_id),
  CONSTRAINT fk_invite_codes_member FOREIGN KEY (member_id) REFERENCES members (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE refresh_tokens (
  id         BIGINT      NOT NULL AUTO_INCREMENT,
  family_id  CHAR(32)    CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  member_id  BIGINT      NOT NULL,
  token_hash CHAR(64)    CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  expires_at DATETIME(6) NOT NULL,
  used_at    DATETIME(6) NULL,
  revoked_at DATETIME(6) NULL,
  created_at DATETIME(6) NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uq_refresh_tokens_hash (token_hash),
  KEY idx_refresh_tokens_family (family_id),
  KEY idx_refresh_tokens_member (member_id),
  CONSTRAINT fk_refresh_tokens_member FOREIGN KEY (member_id) REFERENCES members (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE audit_log (
  id           BIGINT      NOT NULL AUTO_INCREMENT,
  actor_id     BIGINT      NULL,
  org_id       BIGINT      NULL,
  action       VARCHAR(64) NOT NULL,
  entity       VARCHAR(32) NOT NULL,
  entity_id    BIGINT      NOT NULL,
  before_state TEXT        NOT NULL,
  after_state  TEXT        NOT NULL,
  created_at   DATETIME(6) NOT NULL,
  PRIMARY KEY (id),
  KEY idx_audit_log_org (org_id, id),
  KEY idx_audit_log_created (created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- +goose Down
DROP TABLE audit_log;
DROP TABLE refresh_tokens;
DROP TABLE invite_codes;
DROP TABLE member_roles;
DROP TABLE members;
DROP TABLE orgs;
