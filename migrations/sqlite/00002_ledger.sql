-- The ledger: the rule catalogue (versioned), append-only entries hash-chained per member,
-- running totals kept in the entries' own transactions, and closed months.
-- Index names match the MySQL migration.
-- +goose Up
CREATE TABLE rules (
  id               INTEGER      NOT NULL PRIMARY KEY AUTOINCREMENT,
  code             VARCHAR(64)  NOT NULL,
  version          INTEGER      NOT NULL,
  name             VARCHAR(100) NOT NULL,
  category         VARCHAR(20)  NOT NULL,
  how              VARCHAR(16)  NOT NULL,
  points           INTEGER      NOT NULL,
  unit             VARCHAR(16)  NOT NULL,
  monthly_cap      INTEGER      NULL,
  needs_evidence   BOOLEAN      NOT NULL DEFAULT 0,
  needs_assignment BOOLEAN      NOT NULL DEFAULT 0,
  active           BOOLEAN      NOT NULL DEFAULT 1,
  created_by       INTEGER      NULL,
  created_at       DATETIME     NOT NULL
);
CREATE UNIQUE INDEX uq_rules_code_version ON rules (code, version);

INSERT INTO rules (code, version, name, category, how, points, unit, monthly_cap, needs_evidence, needs_assignment, active, created_at) VALUES
  ('four_ones.listen_masses', 1, '听取党外群众意见', 'four_ones', 'claim', 20, 'once', 20, 1, 0, 1, '2026-01-01 00:00:00'),
  ('four_ones.guide_activists', 1, '掌握入党积极分子学习状态', 'four_ones', 'claim', 20, 'once', 20, 1, 0, 1, '2026-01-01 00:00:00'),
  ('four_ones.read_theory', 1, '阅读党的理论书籍', 'four_ones', 'claim', 20, 'once', 20, 1, 0, 1, '2026-01-01 00:00:00'),
  ('four_ones.volunteer', 1, '参加志愿者活动', 'four_ones', 'claim', 20, 'once', 20, 1, 0, 1, '2026-01-01 00:00:00'),
  ('volunteer.hours', 1, '志愿服务时长', 'volunteer', 'claim', 10, 'hour', 100, 1, 0, 1, '2026-01-01 00:00:00'),
  ('pioneer.duty', 1, '党员先锋岗履职', 'pioneer', 'claim', 30, 'once', 30, 0, 1, 1, '2026-01-01 00:00:00'),
  ('activity.day', 1, '党员活动日', 'activity', 'checkin', 20, 'once', 20, 0, 0, 1, '2026-01-01 00:00:00'),
  ('meeting.attend', 1, '三会一课', 'activity', 'checkin', 10, 'once', 40, 0, 0, 1, '2026-01-01 00:00:00'),
  ('adjust.bonus', 1, '奖励', 'adjustment', 'manual', 0, 'any', NULL, 0, 0, 1, '2026-01-01 00:00:00'),
  ('adjust.deduct', 1, '扣减', 'adjustment', 'manual', 0, 'any', NULL, 0, 0, 1, '2026-01-01 00:00:00');

CREATE TABLE member_chains (
  member_id INTEGER  NOT NULL PRIMARY KEY REFERENCES members (id),
  seq       INTEGER  NOT NULL DEFAULT 0,
  last_hash CHAR(64) NOT NULL
);

CREATE TABLE entries (
  id           INTEGER      NOT NULL PRIMARY KEY AUTOINCREMENT,
  member_id    INTEGER      NOT NULL REFERENCES members (id),
  branch_id    INTEGER      NOT NULL REFERENCES orgs (id),
  rule_code    VARCHAR(64)  NOT NULL,
  rule_version INTEGER      NOT NULL,
  category     VARCHAR(20)  NOT NULL,
  period       CHAR(7)      NOT NULL,
  occurred_on  CHAR(10)     NOT NULL,
  points       INTEGER      NOT NULL,
  source       VARCHAR(16)  NOT NULL,
  claim_id     INTEGER      NULL,
  reverses_id  INTEGER      NULL,
  reason       VARCHAR(500) NOT NULL DEFAULT '',
  actor_id     INTEGER      NULL,
  seq          INTEGER      NOT NULL,
  prev_hash    CHAR(64)     NOT NULL,
  hash         CHAR(64)     NOT NULL,
  created_at   DATETIME     NOT NULL
);
CREATE UNIQUE INDEX uq_entries_member_seq ON entries (member_id, seq);
CREATE UNIQUE INDEX uq_entries_reverses ON entries (reverses_id);
CREATE UNIQUE INDEX uq_entries_claim ON entries (claim_id);
CREATE INDEX idx_entries_member_period ON entries (member_id, period);
CREATE INDEX idx_entries_branch_period ON entries (branch_id, period);

CREATE TABLE member_totals (
  member_id INTEGER     NOT NULL,
  period    CHAR(7)     NOT NULL,
  branch_id INTEGER     NOT NULL,
  category  VARCHAR(20) NOT NULL,
  points    INTEGER     NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX uq_member_totals ON member_totals (member_id, period, branch_id, category);
CREATE INDEX idx_member_totals_branch ON member_totals (period, branch_id);

CREATE TABLE rule_totals (
  member_id INTEGER     NOT NULL,
  period    CHAR(7)     NOT NULL,
  rule_code VARCHAR(64) NOT NULL,
  points    INTEGER     NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX uq_rule_totals ON rule_totals (member_id, period, rule_code);

CREATE TABLE closed_periods (
  id            INTEGER      NOT NULL PRIMARY KEY AUTOINCREMENT,
  org_id        INTEGER      NOT NULL REFERENCES orgs (id),
  period        CHAR(7)      NOT NULL,
  closed_by     INTEGER      NULL,
  closed_at     DATETIME     NOT NULL,
  reopened_by   INTEGER      NULL,
  reopened_at   DATETIME     NULL,
  reopen_reason VARCHAR(500) NULL
);
CREATE INDEX idx_closed_periods ON closed_periods (period, org_id);

-- +goose Down
DROP TABLE closed_periods;
DROP TABLE rule_totals;
DROP TABLE member_totals;
DROP TABLE entries;
DROP TABLE member_chains;
DROP TABLE rules;
