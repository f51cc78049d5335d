-- Staff type their usernames as their phones capitalise them. MySQL's utf8mb4_unicode_ci
-- has always matched usernames without regard to case, and kept two that differ only in
-- case from both existing; SQLite compared them byte for byte. The unique index now folds
-- case (ASCII letters, SQLite's NOCASE), and staff log-in compares with the same collation,
-- so both databases agree. A database holding two usernames that differ only in case stops
-- at this migration with a UNIQUE error: rename one of them, then start again.
-- +goose Up
DROP INDEX uq_members_username;
CREATE UNIQUE INDEX uq_members_username ON members (username COLLATE NOCASE);

-- +goose Down
DROP INDEX uq_members_username;
CREATE UNIQUE INDEX uq_members_username ON members (username);
