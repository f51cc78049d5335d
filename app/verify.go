package app

import (
	"context"
	"fmt"
	"sort"

	"partyledger/models"
)

// VerifyReport is what Verify checked.
type VerifyReport struct {
	Members int
	Entries int
}

// Verify walks every member's entries in chain order, checking that places follow on,
// that each entry links to the one before and that its hash matches its content; then it
// recomputes every running total and chain head from the entries, and each committee's
// count of members at each score from the month totals. It returns an error
// naming the first mismatch.
func Verify(ctx context.Context, db *DB) (VerifyReport, error) {
	var rep VerifyReport
	rows, err := db.R.WithContext(ctx).Model(&models.Entry{}).Order("member_id, seq").Rows()
	if err != nil {
		return rep, fmt.Errorf("verify: %w", err)
	}
	defer rows.Close()
	type mkey struct {
		member   int64
		period   models.Period
		branch   int64
		category string
	}
	type rkey struct {
		member int64
		period models.Period
		rule   string
	}
	type monthKey struct {
		member int64
		period models.Period
		branch int64
	}
	months := map[monthKey]models.Points{}
	flags := map[rkey]models.FourOnes{} // rule left empty: the member's month
	totals := map[mkey]models.Points{}
	ruleTotals := map[rkey]models.Points{}
	heads := map[int64]models.MemberChain{}
	var prev models.Entry
	for rows.Next() {
		var e models.Entry
		if err := db.R.ScanRows(rows, &e); err != nil {
			return rep, fmt.Errorf("verify: %w", err)
		}
		rep.Entries++
		if e.MemberID != prev.MemberID {
			rep.Members++
			prev = models.Entry{MemberID: e.MemberID, Hash: GenesisHash}
		}
		if e.Seq != prev.Seq+1 {
			return rep, fmt.Errorf("member %d: entry %d is at place %d, want %d (an entry is missing or doubled)", e.MemberID, e.ID, e.Seq, prev.Seq+1)
		}
		if e.PrevHash != prev.Hash {
			return rep, fmt.Errorf("member %d: entry %d does not link to the entry before it (chain broken at place %d)", e.MemberID, e.ID, e.Seq)
		}
		if h := EntryHash(e); h != e.Hash {
			return rep, fmt.Errorf("member %d: entry %d does not match its hash (its content was changed)", e.MemberID, e.ID)
		}
		totals[mkey{e.MemberID, e.Period, e.BranchID, e.Category}] += e.Points
		ruleTotals[rkey{e.MemberID, e.Period, e.RuleCode}] += e.Points
		months[monthKey{e.MemberID, e.Period, e.BranchID}] += e.Points
		heads[e.MemberID] = models.MemberChain{MemberID: e.MemberID, Seq: e.Seq, LastHash: e.Hash}
		prev = e
	}
	if err := rows.Err(); err != nil {
		return rep, fmt.Errorf("verify: %w", err)
	}

	var stored []models.MemberTotal
	if err := db.R.WithContext(ctx).Find(&stored).Error; err != nil {
		return rep, fmt.Errorf("verify: %w", err)
	}
	sort.Slice(stored, func(i, j int) bool { return stored[i].MemberID < stored[j].MemberID })
	for _, t := range stored {
		k := mkey{t.MemberID, t.Period, t.BranchID, t.Category}
		if totals[k] != t.Points {
			return rep, fmt.Errorf("member %d: total of %s in branch %d, %s is %s, the entries add up to %s", t.MemberID, t.Category, t.BranchID, t.Period, t.Points, totals[k])
		}
		delete(totals, k)
	}
	for k, p := range totals {
		if p != 0 {
			return rep, fmt.Errorf("member %d: no total of %s in branch %d, %s, the entries add up to %s", k.member, k.category, k.branch, k.period, p)
		}
	}
	for k, p := range ruleTotals {
		if bit := models.FourOnesBit(k.rule); bit != 0 && p > 0 {
			flags[rkey{k.member, k.period, ""}] |= bit
		}
	}
	var storedRules []models.RuleTotal
	if err := db.R.WithContext(ctx).Find(&storedRules).Error; err != nil {
		return rep, fmt.Errorf("verify: %w", err)
	}
	for _, t := range storedRules {
		k := rkey{t.MemberID, t.Period, t.RuleCode}
		if ruleTotals[k] != t.Points {
			return rep, fmt.Errorf("member %d: total under %s in %s is %s, the entries add up to %s", t.MemberID, t.RuleCode, t.Period, t.Points, ruleTotals[k])
		}
		delete(ruleTotals, k)
	}
	for k, p := range ruleTotals {
		if p != 0 {
			return rep, fmt.Errorf("member %d: no total under %s in %s, the entries add up to %s", k.member, k.rule, k.period, p)
		}
	}
	var storedMonths []models.MemberMonth
	if err := db.R.WithContext(ctx).Order("member_id, period, branch_id").Find(&storedMonths).Error; err != nil {
		return rep, fmt.Errorf("verify: %w", err)
	}
	for _, t := range storedMonths {
		k := monthKey{t.MemberID, t.Period, t.BranchID}
		if months[k] != t.Points {
			return rep, fmt.Errorf("member %d: month total in branch %d, %s is %s, the entries add up to %s", t.MemberID, t.BranchID, t.Period, t.Points, months[k])
		}
		if f := flags[rkey{t.MemberID, t.Period, ""}]; f != t.FourOnes {
			return rep, fmt.Errorf("member %d: 四个一 flags of %s are %04b, the entries make %04b", t.MemberID, t.Period, t.FourOnes, f)
		}
		delete(months, k)
	}
	for k, p := range months {
		if p != 0 {
			return rep, fmt.Errorf("member %d: no month total in branch %d, %s, the entries add up to %s", k.member, k.branch, k.period, p)
		}
	}
	if err := verifyCommitteePoints(ctx, db, storedMonths); err != nil {
		return rep, err
	}
	var chains []models.MemberChain
	if err := db.R.WithContext(ctx).Find(&chains).Error; err != nil {
		return rep, fmt.Errorf("verify: %w", err)
	}
	for _, c := range chains {
		h, ok := heads[c.MemberID]
		if !ok {
			h = models.MemberChain{MemberID: c.MemberID, LastHash: GenesisHash}
		}
		if c.Seq != h.Seq || c.LastHash != h.LastHash {
			return rep, fmt.Errorf("member %d: the chain head says place %d, the entries end at place %d", c.MemberID, c.Seq, h.Seq)
		}
		delete(heads, c.MemberID)
	}
	for id := range heads {
		return rep, fmt.Errorf("member %d: has entries but no chain head", id)
	}
	return rep, nil
}

// verifyCommitteePoints checks every committee's histogram against the month totals
// (checked against the entries before it): how many rows of its branches stand at each
// score.
func verifyCommitteePoints(ctx context.Context, db *DB, months []models.MemberMonth) error {
	var orgs []models.Org
	if err := db.R.WithContext(ctx).Find(&orgs).Error; err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	var branches, committees []models.Org
	for _, o := range orgs {
		switch o.Kind {
		case models.KindBranch:
			branches = append(branches, o)
		case models.KindCommittee:
			committees = append(committees, o)
		}
	}
	committeeOf := nearestCommittees(branches, committees)
	type key struct {
		period    models.Period
		committee int64
		points    models.Points
	}
	want := map[key]int64{}
	for _, m := range months {
		if c, ok := committeeOf[m.BranchID]; ok {
			want[key{m.Period, c, m.Points}]++
		}
	}
	var stored []struct {
		Period      models.Period
		CommitteeID int64
		Points      models.Points
		Members     int64
	}
	if err := db.R.WithContext(ctx).Raw("SELECT period, committee_id, points, members FROM committee_points ORDER BY period, committee_id, points").
		Scan(&stored).Error; err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	for _, s := range stored {
		k := key{s.Period, s.CommitteeID, s.Points}
		if want[k] != s.Members {
			return fmt.Errorf("committee %d: %s says %d members at %s points, the month totals have %d", s.CommitteeID, s.Period, s.Members, s.Points, want[k])
		}
		delete(want, k)
	}
	for k, n := range want {
		return fmt.Errorf("committee %d: %s has no count of members at %s points, the month totals have %d", k.committee, k.period, k.points, n)
	}
	return nil
}
