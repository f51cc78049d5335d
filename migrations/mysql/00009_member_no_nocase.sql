-- SQLite's member numbers now match without regard to case (sqlite/00009). MySQL's
-- utf8mb4_unicode_ci collation has always done so, so nothing changes here; the version
-- keeps the two dialects' schema versions in step.
-- +goose Up
SELECT 1;

-- +goose Down
SELECT 1;
