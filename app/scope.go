package app

import (
	"context"
	"database/sql"
	"strings"

	"gorm.io/gorm"

	"partyledger/models"
)

// scope is the part of the tree a leaderboard, a rank or a report covers, as SQL over
// member_months (alias mm) joined with members (alias m). A row belongs to the scope
// when the branch it was earned in lies in the org's subtree; for a group, when the
// member is in the group too.
type scope struct {
	Org   models.Org
	cond  string // over mm and m; "" for the whole tree
	args  []any
	rcond string // the same over members m alone, for members with no row
	rargs []any
}

// scopeOf builds the scope of org.
func scopeOf(org models.Org) scope {
	s := scope{Org: org}
	switch {
	case org.Kind == models.KindBranch:
		s.cond, s.args = "mm.branch_id = ?", []any{org.ID}
		s.rcond, s.rargs = "m.branch_id = ?", []any{org.ID}
	case org.Kind == models.KindGroup:
		s.cond, s.args = "mm.branch_id = ? AND m.group_id = ?", []any{*org.ParentID, org.ID}
		s.rcond, s.rargs = "m.branch_id = ? AND m.group_id = ?", []any{*org.ParentID, org.ID}
	case org.ParentID == nil:
		// The root: every branch is inside, so no filter on the rows, and the whole month
		// reads in the order of idx_member_months_rank. Members placed at a committee
		// itself (the bootstrap admin) are staff, not in any branch, and rank nowhere.
		s.rcond = "m.branch_id IN (SELECT o.id FROM orgs o WHERE o.kind = 'branch')"
	default:
		cond, args := subtree("o.path", org.Path)
		sub := "(SELECT o.id FROM orgs o WHERE " + cond + " AND o.kind = 'branch')"
		s.cond, s.args = "mm.branch_id IN "+sub, args
		s.rcond, s.rargs = "m.branch_id IN "+sub, args
	}
	return s
}

// and returns the scope's condition joined to other conditions, and all their arguments.
func and(scopeCond string, scopeArgs []any, conds []string, args ...any) (string, []any) {
	if scopeCond != "" {
		conds = append([]string{scopeCond}, conds...)
		args = append(append([]any{}, scopeArgs...), args...)
	}
	return strings.Join(conds, " AND "), args
}

// rowsWhere is the WHERE of the scope's member_months rows in period plus conds.
func (s scope) rowsWhere(period models.Period, conds []string, args ...any) (string, []any) {
	return and(s.cond, s.args, append([]string{"mm.period = ?"}, conds...), append([]any{period}, args...)...)
}

// needsMembers reports whether the scope's row condition refers to members m.
func (s scope) needsMembers() bool { return s.Org.Kind == models.KindGroup }

// noRowCond selects active members inside the scope who have no row in period in the
// branch they are in now: they have earned nothing there this month, and they rank with
// zero points.
func (s scope) noRowWhere(period models.Period, conds []string, args ...any) (string, []any) {
	base := []string{"m.status = 'active'", "NOT EXISTS (SELECT 1 FROM member_months x WHERE x.member_id = m.id AND x.period = ? AND x.branch_id = m.branch_id)"}
	return and(s.rcond, s.rargs, append(base, conds...), append([]any{period}, args...)...)
}

// rankCounts is how many rows of the scope in period rank strictly above points, and how
// many share points but sort before member (ties sort by member id, highest first). Rows
// are member_months rows plus the members with no row, at zero points.
func (s scope) rankCounts(ctx context.Context, db *gorm.DB, period models.Period, points models.Points, member int64) (above, tiesBefore int64, err error) {
	from := "member_months mm"
	if s.needsMembers() {
		from += " JOIN members m ON m.id = mm.member_id"
	}
	where, args := s.rowsWhere(period, []string{"mm.points >= ?"}, points)
	var c struct{ Above, Ties sql.NullInt64 }
	q := "SELECT SUM(CASE WHEN mm.points > ? THEN 1 ELSE 0 END) AS above, SUM(CASE WHEN mm.points = ? AND mm.member_id > ? THEN 1 ELSE 0 END) AS ties FROM " + from + " WHERE " + where
	if err := db.WithContext(ctx).Raw(q, append([]any{points, points, member}, args...)...).Scan(&c).Error; err != nil {
		return 0, 0, dbError("rank", err)
	}
	above, tiesBefore = c.Above.Int64, c.Ties.Int64
	if points <= 0 {
		// Members with no row sit at zero.
		cond := []string{}
		var cargs []any
		if points == 0 {
			cond, cargs = []string{"m.id > ?"}, []any{member}
		}
		where, args := s.noRowWhere(period, cond, cargs...)
		var n int64
		if err := db.WithContext(ctx).Raw("SELECT COUNT(*) FROM members m WHERE "+where, args...).Scan(&n).Error; err != nil {
			return 0, 0, dbError("rank", err)
		}
		if points < 0 {
			above += n
		} else {
			tiesBefore += n
		}
	}
	return above, tiesBefore, nil
}
