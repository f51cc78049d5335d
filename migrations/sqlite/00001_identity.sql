-- Identity: the org tree, the roster, roles, invite codes, refresh tokens and the audit log.
-- members.auth_rev changes whenever what a member may do changes (roles, status, branch,
-- or an org they depend on); servers cache the caller's roles keyed by it.
-- Index names match the MySQL migration; a test compares the two schemas.
-- +goose Up
CREATE TABLE orgs (
  id         INTEGER      NOT NULL PRIMARY KEY AUTOINCREMENT,
  parent_id  INTEGER      NULL REFERENCES orgs (id),
  kind       VARCHAR(20)  NOT NULL,
  name       VARCHAR(100) NOT NULL,
  path       VARCHAR(255) NOT NULL DEFAULT '',
  depth      INTEGER      NOT NULL DEFAULT 0,
  created_at DATETIME     NOT NULL,
  updated_at DATETIME     NOT NULL
);
CREATE UNIQUE INDEX uq_orgs_parent_name ON orgs (parent_id, name);
CREATE INDEX idx_orgs_path ON orgs (path);

CREATE TABLE members (
  id            INTEGER      NOT NULL PRIMARY KEY AUTOINCREMENT,
  member_no     VARCHAR(32)  NOT NULL,
  name          VARCHAR(64)  NOT NULL,
  branch_id     INTEGER      NOT NULL REFERENCES orgs (id),
  group_id      INTEGER      NULL REFERENCES orgs (id),
  status        VARCHAR(16)  NOT NULL DEFAULT 'active',
  username      VARCHAR(64)  NULL,
  password_hash VARCHAR(100) NULL,
  wechat_openid VARCHAR(128) NULL,
  auth_rev      INTEGER      NOT NULL DEFAULT 0,
  created_at    DATETIME     NOT NULL,
  updated_at    DATETIME     NOT NULL
);
CREATE UNIQUE INDEX uq_members_member_no ON members (member_no);
CREATE UNIQUE INDEX uq_members_username ON members (username);
CREATE UNIQUE INDEX uq_members_wechat_openid ON members (wechat_openid);
CREATE INDEX idx_members_branch ON members (branch_id);
CREATE INDEX idx_members_group ON members (group_id);

CREATE TABLE member_roles (
  id         INTEGER     NOT NULL PRIMARY KEY AUTOINCREMENT,
  member_id  INTEGER     NOT NULL REFERENCES members (id),
  role       VARCHAR(16) NOT NULL,
  org_id     INTEGER     NOT NULL REFERENCES orgs (id),
  created_at DATETIME    NOT NULL
);
CREATE UNIQUE INDEX uq_member_roles ON member_roles (member_id, role, org_id);
CREATE INDEX idx_member_roles_org ON member_roles (org_id);

CREATE TABLE invite_codes (
  id         INTEGER  NOT NULL PRIMARY KEY AUTOINCREMENT,
  member_id  INTEGER  NOT NULL REFERENCES members (id),
  code_hash  CHAR(64) NOT NULL,
  expires_at DATETIME NOT NULL,
  used_at    DATETIME NULL,
  revoked_at DATETIME NULL,
  created_by INTEGER  NOT NULL,
  created_at DATETIME NOT NULL
);
CREATE UNIQUE INDEX uq_invite_codes_hash ON invite_codes (code_hash);
CREATE INDEX idx_invite_codes_member ON invite_codes (member_id);

CREATE TABLE refresh_tokens (
  id         INTEGER  NOT NULL PRIMARY KEY AUTOINCREMENT,
  family_id  CHAR(32) NOT NULL,
  member_id  INTEGER  NOT NULL REFERENCES members (id),
  token_hash CHAR(64) NOT NULL,
  expires_at DATETIME NOT NULL,
  used_at    DATETIME NULL,
  revoked_at DATETIME NULL,
  created_at DATETIME NOT NULL
);
CREATE UNIQUE INDEX uq_refresh_tokens_hash ON refresh_tokens (token_hash);
CREATE INDEX idx_refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX idx_refresh_tokens_member ON refresh_tokens (member_id);

CREATE TABLE audit_log (
  id           INTEGER     NOT NULL PRIMARY KEY AUTOINCREMENT,
  actor_id     INTEGER     NULL,
  org_id       INTEGER     NULL,
  action       VARCHAR(64) NOT NULL,
  entity       VARCHAR(32) NOT NULL,
  entity_id    INTEGER     NOT NULL,
  before_state TEXT        NOT NULL,
  after_state  TEXT        NOT NULL,
  created_at   DATETIME    NOT NULL
);
CREATE INDEX idx_audit_log_org ON audit_log (org_id, id);
CREATE INDEX idx_audit_log_created ON audit_log (created_at);

-- +goose Down
DROP TABLE audit_log;
DROP TABLE refresh_tokens;
DROP TABLE invite_codes;
DROP TABLE member_roles;
DROP TABLE members;
DROP TABLE orgs;
