-- A branch's leaderboard lists its members with their names and statuses. With
-- (branch_id) alone that is one lookup in the table per member; with the columns in the
-- index it is one range read.
-- +goose Up
DROP INDEX idx_members_branch;
CREATE INDEX idx_members_branch ON members (branch_id, status, group_id, name);

-- +goose Down
DROP INDEX idx_members_branch;
CREATE INDEX idx_members_branch ON members (branch_id);
