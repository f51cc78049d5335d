-- How many member_months rows of a committee's month stand at each score: a histogram
-- kept in the entries' own transactions, so that a member's rank in their committee sums
-- a few dozen rows instead of counting every member above them. A row's committee is the
-- nearest committee above its branch (only rows of branches count, as in the ranks).
-- +goose Up
CREATE TABLE committee_points (
  period       CHAR(7) NOT NULL,
  committee_id INTEGER NOT NULL,
  points       INTEGER NOT NULL,
  members      INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (period, committee_id, points)
) WITHOUT ROWID;

CREATE INDEX idx_orgs_kind_path ON orgs (kind, path);

INSERT INTO committee_points (period, committee_id, points, members)
SELECT mm.period, bc.committee_id, mm.points, COUNT(*)
FROM member_months mm
JOIN (SELECT b.id,
        (SELECT c.id FROM orgs c WHERE c.kind = 'committee' AND SUBSTR(b.path, 1, LENGTH(c.path)) = c.path
         ORDER BY c.depth DESC LIMIT 1) AS committee_id
      FROM orgs b WHERE b.kind = 'branch') bc ON bc.id = mm.branch_id
WHERE bc.committee_id IS NOT NULL
GROUP BY mm.period, bc.committee_id, mm.points;

-- +goose Down
DROP INDEX idx_orgs_kind_path;
DROP TABLE committee_points;
