package app

import (
	"cmp"
	"context"
	"slices"
	"strings"

	"gorm.io/gorm"

	"partyledger/models"
)

// committee_points counts, for each committee and month, the member_months rows of the
// branches under it (nearest committee first) that stand at each score. A member's rank
// in their committee is then one plus the members of the rows above their score: a sum
// over the committee's distinct scores, where counting the members above read every one
// of them (0.4 µs a row on MariaDB, 2 ms and more at the bottom of a 3,300-member
// committee). Every change of a member_months row's points moves one member from one
// row to another in the same transaction.

// committeeAbove is a scalar subquery: the members of the committee's month above points
// (an SQL expression with its own arguments), summed from the counts of the committees
// in its subtree (usually itself alone).
func committeeAbove(committee models.Org, per models.Period, pointsExpr string, pointsArgs ...any) (string, []any) {
	cond, cargs := subtree("c.path", committee.Path)
	q := `(SELECT COALESCE(SUM(cp.members), 0) FROM orgs c CROSS JOIN committee_points cp ON cp.period = ? AND cp.committee_id = c.id AND cp.points > ` + pointsExpr + `
  WHERE c.kind = 'committee' AND ` + cond + `)`
	return q, append(append([]any{per}, pointsArgs...), cargs...)
}

// cpDelta moves n members (n < 0: away) to or from committee's score in period.
type cpDelta struct {
	Period    models.Period
	Committee int64
	Points    models.Points
	N         int64
}

// addCommitteePoints applies deltas in one statement a few hundred at a time. Rows are
// taken in (committee, period, points) order, the order every writer takes them in, so
// that two transactions that move members between the same scores wait for each other
// instead of deadlocking.
func addCommitteePoints(tx *gorm.DB, ds []cpDelta) error {
	for _, st := range committeePointsSQL(tx.Dialector.Name(), ds) {
		if err := tx.Exec(st.query, st.args...).Error; err != nil {
			return dbError("committee points", err)
		}
	}
	return nil
}

// cpLater gathers a write's deltas, to be applied when its transaction is about to
// commit (withCounts, and txGroup for SQLite's shared transactions).
type cpLater struct{ ds []cpDelta }

type cpLaterKey struct{}

// addCommitteePointsLater applies deltas when tx's transaction is about to commit, if it
// is run by collectCounts; otherwise now.
func addCommitteePointsLater(tx *gorm.DB, ds []cpDelta) error {
	if later, ok := tx.Statement.Context.Value(cpLaterKey{}).(*cpLater); ok {
		later.ds = append(later.ds, ds...)
		return nil
	}
	return addCommitteePoints(tx, ds)
}

// collectCounts runs fn in tx and returns the deltas it left for the commit.
func collectCounts(tx *gorm.DB, fn func(tx *gorm.DB) error) ([]cpDelta, error) {
	later := &cpLater{}
	err := fn(tx.WithContext(context.WithValue(tx.Statement.Context, cpLaterKey{}, later)))
	return later.ds, err
}

// withCounts is fn, then the deltas it left. The committees' score counts are hot rows
// (every entry of a committee moves a member between two of them), so a write's moves
// are made last, just before its commit: their locks are held for one statement and the
// commit.
func withCounts(fn func(tx *gorm.DB) error) func(tx *gorm.DB) error {
	return func(tx *gorm.DB) error {
		ds, err := collectCounts(tx, fn)
		if err != nil {
			return err
		}
		return addCommitteePoints(tx, ds)
	}
}

type statement struct {
	query string
	args  []any
}

// committeePointsSQL is addCommitteePoints' statements for a dialect ("mysql" or
// "sqlite"): deltas merged by row, sorted, without the ones that add nothing.
func committeePointsSQL(dialect string, ds []cpDelta) []statement {
	slices.SortFunc(ds, func(a, b cpDelta) int {
		return cmp.Or(cmp.Compare(a.Committee, b.Committee), strings.Compare(string(a.Period), string(b.Period)), cmp.Compare(a.Points, b.Points))
	})
	var rows []cpDelta
	for _, d := range ds {
		if n := len(rows); n > 0 && rows[n-1].Committee == d.Committee && rows[n-1].Period == d.Period && rows[n-1].Points == d.Points {
			rows[n-1].N += d.N
			continue
		}
		rows = append(rows, d)
	}
	rows = slices.DeleteFunc(rows, func(d cpDelta) bool { return d.N == 0 || d.Committee == 0 })
	upsert := " ON CONFLICT (period, committee_id, points) DO UPDATE SET members = members + excluded.members"
	if dialect == "mysql" {
		upsert = " ON DUPLICATE KEY UPDATE members = members + VALUES(members)"
	}
	var out []statement
	for len(rows) > 0 {
		part := rows[:min(len(rows), 500)]
		rows = rows[len(part):]
		args := make([]any, 0, 4*len(part))
		for _, d := range part {
			args = append(args, d.Period, d.Committee, int64(d.Points), d.N)
		}
		out = append(out, statement{"INSERT INTO committee_points (period, committee_id, points, members) VALUES " +
			strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?), ", len(part)), ", ") + upsert, args})
	}
	return out
}

// branchCommittees maps each of the given orgs that is a branch to the nearest committee
// above it; orgs that are not branches, or have no committee above, are left out.
func branchCommittees(tx *gorm.DB, branchIDs []int64) (map[int64]int64, error) {
	out := map[int64]int64{}
	if len(branchIDs) == 0 {
		return out, nil
	}
	var branches []models.Org
	if err := tx.Where("id IN ? AND kind = ?", distinct(branchIDs), models.KindBranch).Find(&branches).Error; err != nil {
		return nil, dbError("committee of branch", err)
	}
	var above []int64
	for _, b := range branches {
		above = append(above, ancestorIDs(b.Path)...)
	}
	if len(above) == 0 {
		return out, nil
	}
	var committees []models.Org
	if err := tx.Where("id IN ? AND kind = ?", distinct(above), models.KindCommittee).Find(&committees).Error; err != nil {
		return nil, dbError("committee of branch", err)
	}
	return nearestCommittees(branches, committees), nil
}

// nearestCommittees maps each branch to the deepest of the committees on its path, if
// any is.
func nearestCommittees(branches, committees []models.Org) map[int64]int64 {
	depth := map[int64]int{}
	for _, c := range committees {
		depth[c.ID] = c.Depth
	}
	out := map[int64]int64{}
	for _, b := range branches {
		best := -1
		for _, id := range ancestorIDs(b.Path) {
			if d, ok := depth[id]; ok && d > best {
				out[b.ID], best = id, d
			}
		}
	}
	return out
}

// moveCommitteePoints moves the rows of the given branches, every month of them, from the
// committee they counted under to another (either may be 0: none). The branches' org rows
// must be locked by tx (a move updates them), so that no entry of theirs is in flight.
func moveCommitteePoints(tx *gorm.DB, branchIDs []int64, from, to int64) error {
	if from == to || len(branchIDs) == 0 {
		return nil
	}
	var groups []struct {
		Period  models.Period
		Points  models.Points
		Members int64
	}
	if err := tx.Raw("SELECT period, points, COUNT(*) AS members FROM member_months WHERE branch_id IN ? GROUP BY period, points",
		branchIDs).Scan(&groups).Error; err != nil {
		return dbError("move committee points", err)
	}
	ds := make([]cpDelta, 0, 2*len(groups))
	for _, g := range groups {
		ds = append(ds, cpDelta{g.Period, from, g.Points, -g.Members}, cpDelta{g.Period, to, g.Points, g.Members})
	}
	return addCommitteePoints(tx, ds)
}
