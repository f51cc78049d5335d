-- Member numbers (党员编号, 学工号) are one member's whatever their letters' case: a
-- roster typed "d00017" means member D00017. MySQL's utf8mb4_unicode_ci has always
-- matched them so, and refused a second member whose number differs only in case;
-- SQLite compared them byte for byte, so an import of "d00017" created a second person.
-- The unique index now folds case (member numbers are ASCII: SQLite's NOCASE), and the
-- lookups by number compare with the same collation. A database holding two numbers that
-- differ only in case stops at this migration with a UNIQUE error: renumber one of those
-- members, then start again.
-- +goose Up
DROP INDEX uq_members_member_no;
CREATE UNIQUE INDEX uq_members_member_no ON members (member_no COLLATE NOCASE);

-- +goose Down
DROP INDEX uq_members_member_no;
CREATE UNIQUE INDEX uq_members_member_no ON members (member_no);
