-- Aggregation: one row per member, month and branch where the points were earned, kept in
-- the entries' own transactions, so that leaderboards and ranks read a few index entries
-- instead of grouping the ledger; the publicity window of a closed month; appeals.
-- +goose Up
CREATE TABLE member_months (
  member_id BIGINT   NOT NULL,
  period    CHAR(7)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  branch_id BIGINT   NOT NULL,
  points    BIGINT   NOT NULL DEFAULT 0,
  four_ones SMALLINT NOT NULL DEFAULT 0,
  PRIMARY KEY (member_id, period, branch_id),
  KEY idx_member_months_branch (period, branch_id, points, member_id),
  KEY idx_member_months_rank (period, points, member_id)
) ENGINE=InnoDB;

INSERT INTO member_months (member_id, period, branch_id, points, four_ones)
SELECT member_id, period, branch_id, SUM(points), 0 FROM member_totals GROUP BY member_id, period, branch_id;

UPDATE member_months SET four_ones = (
  SELECT COALESCE(SUM(CASE rt.rule_code
    WHEN 'four_ones.listen_masses' THEN 1 WHEN 'four_ones.guide_activists' THEN 2
    WHEN 'four_ones.read_theory' THEN 4 WHEN 'four_ones.volunteer' THEN 8 ELSE 0 END), 0)
  FROM rule_totals rt WHERE rt.member_id = member_months.member_id AND rt.period = member_months.period AND rt.points > 0);

ALTER TABLE closed_periods ADD COLUMN public_until DATETIME(6) NULL;

CREATE TABLE appeals (
  id              BIGINT       NOT NULL AUTO_INCREMENT,
  member_id       BIGINT       NOT NULL,
  branch_id       BIGINT       NOT NULL,
  period          CHAR(7)      CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  claim_id        BIGINT       NULL,
  subject         VARCHAR(32)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  reason          VARCHAR(500) NOT NULL,
  status          VARCHAR(16)  NOT NULL,
  decided_by      BIGINT       NULL,
  decided_at      DATETIME(6)  NULL,
  decision_reason VARCHAR(500) NULL,
  entry_id        BIGINT       NULL,
  created_at      DATETIME(6)  NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uq_appeals_subject (member_id, period, subject),
  KEY idx_appeals_branch (branch_id, status, id),
  CONSTRAINT fk_appeals_member FOREIGN KEY (member_id) REFERENCES members (id),
  CONSTRAINT fk_appeals_branch FOREIGN KEY (branch_id) REFERENCES orgs (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- +goose Down
DROP TABLE appeals;
ALTER TABLE closed_periods DROP COLUMN public_until;
DROP TABLE member_months;
