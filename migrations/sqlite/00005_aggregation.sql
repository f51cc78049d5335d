-- Aggregation: one row per member, month and branch where the points were earned, kept in
-- the entries' own transactions, so that leaderboards and ranks read a few index entries
-- instead of grouping the ledger; the publicity window of a closed month; appeals.
-- +goose Up
CREATE TABLE member_months (
  member_id INTEGER  NOT NULL,
  period    CHAR(7)  NOT NULL,
  branch_id INTEGER  NOT NULL,
  points    INTEGER  NOT NULL DEFAULT 0,
  four_ones SMALLINT NOT NULL DEFAULT 0,
  PRIMARY KEY (member_id, period, branch_id)
) WITHOUT ROWID;
CREATE INDEX idx_member_months_branch ON member_months (period, branch_id, points, member_id);
CREATE INDEX idx_member_months_rank ON member_months (period, points, member_id);

INSERT INTO member_months (member_id, period, branch_id, points, four_ones)
SELECT member_id, period, branch_id, SUM(points), 0 FROM member_totals GROUP BY member_id, period, branch_id;

UPDATE member_months SET four_ones = (
  SELECT COALESCE(SUM(CASE rt.rule_code
    WHEN 'four_ones.listen_masses' THEN 1 WHEN 'four_ones.guide_activists' THEN 2
    WHEN 'four_ones.read_theory' THEN 4 WHEN 'four_ones.volunteer' THEN 8 ELSE 0 END), 0)
  FROM rule_totals rt WHERE rt.member_id = member_months.member_id AND rt.period = member_months.period AND rt.points > 0);

ALTER TABLE closed_periods ADD COLUMN public_until DATETIME NULL;

CREATE TABLE appeals (
  id              INTEGER      NOT NULL PRIMARY KEY AUTOINCREMENT,
  member_id       INTEGER      NOT NULL REFERENCES members (id),
  branch_id       INTEGER      NOT NULL REFERENCES orgs (id),
  period          CHAR(7)      NOT NULL,
  claim_id        INTEGER      NULL,
  subject         VARCHAR(32)  NOT NULL,
  reason          VARCHAR(500) NOT NULL,
  status          VARCHAR(16)  NOT NULL,
  decided_by      INTEGER      NULL,
  decided_at      DATETIME     NULL,
  decision_reason VARCHAR(500) NULL,
  entry_id        INTEGER      NULL,
  created_at      DATETIME     NOT NULL
);
CREATE UNIQUE INDEX uq_appeals_subject ON appeals (member_id, period, subject);
CREATE INDEX idx_appeals_branch ON appeals (branch_id, status, id);

-- +goose Down
DROP TABLE appeals;
ALTER TABLE closed_periods DROP COLUMN public_until;
DROP TABLE member_months;
