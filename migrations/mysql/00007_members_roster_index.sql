-- A branch's leaderboard lists its members with their names and statuses. With
-- (branch_id) alone that is one primary-key lookup per member; with the columns in the
-- index it is one range read. The foreign key on branch_id is served by the wider index.
-- +goose Up
ALTER TABLE members DROP INDEX idx_members_branch, ADD INDEX idx_members_branch (branch_id, status, group_id, name);

-- +goose Down
ALTER TABLE members DROP INDEX idx_members_branch, ADD INDEX idx_members_branch (branch_id);
