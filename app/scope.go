package app

import (
	"context"
	"database/sql"
	"fmt"
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

// small reports whether the scope is one branch, or a group in one: few enough rows to
// read its whole month at once.
func (s scope) small() bool { return s.Org.Kind == models.KindBranch || s.Org.Kind == models.KindGroup }

// needsMembers reports whether the scope's row condition refers to members m.
func (s scope) needsMembers() bool { return s.Org.Kind == models.KindGroup }

// noRowCond selects active members inside the scope who have no row in period in the
// branch they are in now: they have earned nothing there this month, and they rank with
// zero points.
func (s scope) noRowWhere(period models.Period, conds []string, args ...any) (string, []any) {
	base := []string{"m.status = 'active'", "NOT EXISTS (SELECT 1 FROM member_months x WHERE x.member_id = m.id AND x.period = ? AND x.branch_id = m.branch_id)"}
	return and(s.rcond, s.rargs, append(base, conds...), append([]any{period}, args...)...)
}

// place is a row whose place in the scope is asked for: its points and member, and
// whether the rows tied with it ahead of it are wanted too.
type place struct {
	Points models.Points
	Member int64
	Ties   bool
}

// placeCounts says, for each place, how many rows of the scope in period rank strictly
// above it (its competition rank is that plus one) and how many share its points but sort
// before it (ties sort by member id, highest first). Rows are member_months rows plus the
// members with no row, at zero points; those are counted only where they change an
// answer (below zero, or ties at zero when asked for), since counting them reads every
// member of the scope. One query for all places.
func (s scope) placeCounts(ctx context.Context, db *gorm.DB, period models.Period, places ...place) (above, before []int64, err error) {
	above, before = make([]int64, len(places)), make([]int64, len(places))
	if len(places) == 0 {
		return above, before, nil
	}
	if s.Org.Kind == models.KindCommittee {
		// A place that asks for its ties is a page's first row, mostly near the top,
		// where counting the few rows above it is cheaper than summing every committee's
		// counts; a caller's own place may be anywhere, and is summed.
		for _, summed := range []bool{true, false} {
			var part []place
			var at []int
			for i, p := range places {
				if p.Ties != summed {
					part, at = append(part, p), append(at, i)
				}
			}
			if len(part) == 0 {
				continue
			}
			count := s.countPlaces
			if summed {
				count = s.committeePlaceCounts
			}
			a, b, err := count(ctx, db, period, part)
			if err != nil {
				return nil, nil, err
			}
			for k, i := range at {
				above[i], before[i] = a[k], b[k]
			}
		}
		return above, before, nil
	}
	return s.countPlaces(ctx, db, period, places)
}

// countPlaces is placeCounts by counting the scope's rows at or above the lowest place.
func (s scope) countPlaces(ctx context.Context, db *gorm.DB, period models.Period, places []place) (above, before []int64, err error) {
	above, before = make([]int64, len(places)), make([]int64, len(places))
	from := "member_months mm"
	if s.needsMembers() {
		from += " JOIN members m ON m.id = mm.member_id"
	}
	lowest := places[0].Points
	var cols []string
	var args []any
	for i, p := range places {
		lowest = min(lowest, p.Points)
		cols = append(cols, fmt.Sprintf("SUM(CASE WHEN mm.points > ? THEN 1 ELSE 0 END) AS a%d", i),
			fmt.Sprintf("SUM(CASE WHEN mm.points = ? AND mm.member_id > ? THEN 1 ELSE 0 END) AS b%d", i))
		args = append(args, p.Points, p.Points, p.Member)
	}
	where, wargs := s.rowsWhere(period, []string{"mm.points >= ?"}, lowest)
	r, err := db.WithContext(ctx).Raw("SELECT "+strings.Join(cols, ", ")+" FROM "+from+" WHERE "+where, append(args, wargs...)...).Rows()
	if err != nil {
		return nil, nil, dbError("rank", err)
	}
	counts := make([]sql.NullInt64, 2*len(places))
	dst := make([]any, len(counts))
	for i := range counts {
		dst[i] = &counts[i]
	}
	if r.Next() {
		err = r.Scan(dst...)
	}
	if cerr := r.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, nil, dbError("rank", err)
	}
	for i := range places {
		above[i], before[i] = counts[2*i].Int64, counts[2*i+1].Int64
	}
	return above, before, s.addNoRows(ctx, db, period, places, above, before)
}

// committeePlaceCounts is placeCounts for a committee's scope (the province's too): the
// rows above each place are summed from the counts per score of the committees inside it
// (committee_points), a few dozen rows each, where counting them read every row above,
// up to the whole province's month. The province's scope also holds the rows of staff:
// members placed at a committee itself (the bootstrap admin; members are otherwise placed
// at branches only), which the counts leave out. Those are counted, one index range per
// committee. It answers places that do not ask for their ties.
func (s scope) committeePlaceCounts(ctx context.Context, db *gorm.DB, period models.Period, places []place) (above, before []int64, err error) {
	var cols []string
	var args []any
	for i, p := range places {
		col, cargs := committeeAbove(s.Org, period, "?", p.Points)
		args = append(args, cargs...)
		if s.Org.ParentID == nil {
			col += ` + (SELECT COUNT(*) FROM orgs o CROSS JOIN member_months mm ON mm.period = ? AND mm.branch_id = o.id AND mm.points > ? WHERE o.kind = 'committee')`
			args = append(args, period, p.Points)
		}
		cols = append(cols, col+fmt.Sprintf(" AS a%d", i))
	}
	counts := make([]sql.NullInt64, len(places))
	dst := make([]any, len(counts))
	for i := range counts {
		dst[i] = &counts[i]
	}
	if err := db.WithContext(ctx).Raw("SELECT "+strings.Join(cols, ", "), args...).Row().Scan(dst...); err != nil {
		return nil, nil, dbError("rank", err)
	}
	above, before = make([]int64, len(places)), make([]int64, len(places))
	for i := range places {
		above[i] = counts[i].Int64
	}
	return above, before, s.addNoRows(ctx, db, period, places, above, before)
}

// addNoRows adds to the places' counts the scope's members with no row where they change
// an answer: all of them above a place below zero, and those before a place tied at zero.
func (s scope) addNoRows(ctx context.Context, db *gorm.DB, period models.Period, places []place, above, before []int64) error {
	for i, p := range places {
		var cond []string
		var cargs []any
		switch {
		case p.Points < 0:
		case p.Points == 0 && p.Ties:
			cond, cargs = []string{"m.id > ?"}, []any{p.Member}
		default:
			continue
		}
		where, args := s.noRowWhere(period, cond, cargs...)
		var n int64
		if err := scan(db.WithContext(ctx).Raw("SELECT COUNT(*) FROM members m WHERE "+where, args...), &n); err != nil {
			return dbError("rank", err)
		}
		if p.Points < 0 {
			above[i] += n
		} else {
			before[i] += n
		}
	}
	return nil
}

// rank is the competition rank in the scope of a row with points.
func (s scope) rank(ctx context.Context, db *gorm.DB, period models.Period, points models.Points, member int64) (int64, error) {
	above, _, err := s.placeCounts(ctx, db, period, place{Points: points, Member: member})
	if err != nil {
		return 0, err
	}
	return above[0] + 1, nil
}
