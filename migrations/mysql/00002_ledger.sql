-- The ledger: the rule catalogue (versioned), append-only entries hash-chained per member,
-- running totals kept in the entries' own transactions, and closed months.
-- +goose Up
CREATE TABLE rules (
  id               BIGINT       NOT NULL AUTO_INCREMENT,
  code             VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  version          INT          NOT NULL,
  name             VARCHAR(100) NOT NULL,
  category         VARCHAR(20)  NOT NULL,
  how              VARCHAR(16)  NOT NULL,
  points           BIGINT       NOT NULL,
  unit             VARCHAR(16)  NOT NULL,
  monthly_cap      BIGINT       NULL,
  needs_evidence   BOOLEAN      NOT NULL DEFAULT FALSE,
  needs_assignment BOOLEAN      NOT NULL DEFAULT FALSE,
  active           BOOLEAN      NOT NULL DEFAULT TRUE,
  created_by       BIGINT       NULL,
  created_at       DATETIME(6)  NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uq_rules_code_version (code, version)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

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
  member_id BIGINT   NOT NULL,
  seq       BIGINT   NOT NULL DEFAULT 0,
  last_hash CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  PRIMARY KEY (member_id),
  CONSTRAINT fk_member_chains_member FOREIGN KEY (member_id) REFERENCES members (id)
) ENGINE=InnoDB;

CREATE TABLE entries (
  id           BIGINT       NOT NULL AUTO_INCREMENT,
  member_id    BIGINT       NOT NULL,
  branch_id    BIGINT       NOT NULL,
  rule_code    VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  rule_version INT          NOT NULL,
  category     VARCHAR(20)  NOT NULL,
  period       CHAR(7)      CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  occurred_on  CHAR(10)     CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  points       BIGINT       NOT NULL,
  source       VARCHAR(16)  NOT NULL,
  claim_id     BIGINT       NULL,
  reverses_id  BIGINT       NULL,
  reason       VARCHAR(500) NOT NULL DEFAULT '',
  actor_id     BIGINT       NULL,
  seq          BIGINT       NOT NULL,
  prev_hash    CHAR(64)     CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  hash         CHAR(64)     CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  created_at   DATETIME(6)  NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uq_entries_member_seq (member_id, seq),
  UNIQUE KEY uq_entries_reverses (reverses_id),
  UNIQUE KEY uq_entries_claim (claim_id),
  KEY idx_entries_member_period (member_id, period),
  KEY idx_entries_branch_period (branch_id, period),
  CONSTRAINT fk_entries_member FOREIGN KEY (member_id) REFERENCES members (id),
  CONSTRAINT fk_entries_branch FOREIGN KEY (branch_id) REFERENCES orgs (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE member_totals (
  member_id BIGINT      NOT NULL,
  period    CHAR(7)     CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  branch_id BIGINT      NOT NULL,
  category  VARCHAR(20) NOT NULL,
  points    BIGINT      NOT NULL DEFAULT 0,
  UNIQUE KEY uq_member_totals (member_id, period, branch_id, category),
  KEY idx_member_totals_branch (period, branch_id)
) ENGINE=InnoDB;

CREATE TABLE rule_totals (
  member_id BIGINT      NOT NULL,
  period    CHAR(7)     CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  rule_code VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  points    BIGINT      NOT NULL DEFAULT 0,
  UNIQUE KEY uq_rule_totals (member_id, period, rule_code)
) ENGINE=InnoDB;

CREATE TABLE closed_periods (
  id            BIGINT       NOT NULL AUTO_INCREMENT,
  org_id        BIGINT       NOT NULL,
  period        CHAR(7)      CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  closed_by     BIGINT       NULL,
  closed_at     DATETIME(6)  NOT NULL,
  reopened_by   BIGINT       NULL,
  reopened_at   DATETIME(6)  NULL,
  reopen_reason VARCHAR(500) NULL,
  PRIMARY KEY (id),
  KEY idx_closed_periods (period, org_id),
  CONSTRAINT fk_closed_periods_org FOREIGN KEY (org_id) REFERENCES orgs (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- +goose Down
DROP TABLE closed_periods;
DROP TABLE rule_totals;
DROP TABLE member_totals;
DROP TABLE entries;
DROP TABLE member_chains;
DROP TABLE rules;
