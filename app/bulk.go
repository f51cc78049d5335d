package app

import (
	"fmt"
	"time"

	"gorm.io/gorm"

	"partyledger/models"
)

// bulkLedger builds many entries in memory and writes them in batches, for seeding and
// generated data sets. It keeps each member's chain and running totals itself, so what it
// writes passes Verify. It does not check caps or closed months: its caller produces
// entries that respect them. Entries of a member must be added in the order they happened.
type bulkLedger struct {
	heads      map[int64]*models.MemberChain
	entries    []models.Entry
	totals     map[totalKey]models.Points
	ruleTotals map[ruleKey]models.Points
	months     map[monthKey]models.Points
}

type monthKey struct {
	member int64
	period models.Period
	branch int64
}

type totalKey struct {
	member   int64
	period   models.Period
	branch   int64
	category string
}

type ruleKey struct {
	member int64
	period models.Period
	rule   string
}

func newBulkLedger() *bulkLedger {
	return &bulkLedger{heads: map[int64]*models.MemberChain{}, totals: map[totalKey]models.Points{}, ruleTotals: map[ruleKey]models.Points{}, months: map[monthKey]models.Points{}}
}

// ruleTotal is what the member has under rule in period so far, for the caller's caps.
func (b *bulkLedger) ruleTotal(member int64, period models.Period, rule string) models.Points {
	return b.ruleTotals[ruleKey{member, period, rule}]
}

// add places an entry at the end of its member's chain and returns its index; after
// write, b.entries[i].ID is its id.
func (b *bulkLedger) add(in entryInput, at time.Time) int {
	head, ok := b.heads[in.MemberID]
	if !ok {
		head = &models.MemberChain{MemberID: in.MemberID, LastHash: GenesisHash}
		b.heads[in.MemberID] = head
	}
	e := chainEntry(head, in, at)
	b.entries = append(b.entries, e)
	b.totals[totalKey{e.MemberID, e.Period, e.BranchID, e.Category}] += e.Points
	b.ruleTotals[ruleKey{e.MemberID, e.Period, e.RuleCode}] += e.Points
	b.months[monthKey{e.MemberID, e.Period, e.BranchID}] += e.Points
	return len(b.entries) - 1
}

// write inserts everything into a ledger whose members have no entries yet.
func (b *bulkLedger) write(tx *gorm.DB) error {
	if err := tx.CreateInBatches(b.entries, 500).Error; err != nil {
		return fmt.Errorf("bulk entries: %w", err)
	}
	heads := make([]models.MemberChain, 0, len(b.heads))
	for _, h := range b.heads {
		heads = append(heads, *h)
	}
	if err := tx.CreateInBatches(heads, 500).Error; err != nil {
		return fmt.Errorf("bulk chain heads: %w", err)
	}
	totals := make([]models.MemberTotal, 0, len(b.totals))
	for k, p := range b.totals {
		totals = append(totals, models.MemberTotal{MemberID: k.member, Period: k.period, BranchID: k.branch, Category: k.category, Points: p})
	}
	if err := tx.CreateInBatches(totals, 500).Error; err != nil {
		return fmt.Errorf("bulk totals: %w", err)
	}
	rules := make([]models.RuleTotal, 0, len(b.ruleTotals))
	for k, p := range b.ruleTotals {
		rules = append(rules, models.RuleTotal{MemberID: k.member, Period: k.period, RuleCode: k.rule, Points: p})
	}
	if err := tx.CreateInBatches(rules, 500).Error; err != nil {
		return fmt.Errorf("bulk rule totals: %w", err)
	}
	flags := map[ruleKey]models.FourOnes{} // rule left empty: the member's month
	for k, p := range b.ruleTotals {
		if bit := models.FourOnesBit(k.rule); bit != 0 && p > 0 {
			flags[ruleKey{k.member, k.period, ""}] |= bit
		}
	}
	months := make([]models.MemberMonth, 0, len(b.months))
	for k, p := range b.months {
		months = append(months, models.MemberMonth{MemberID: k.member, Period: k.period, BranchID: k.branch, Points: p,
			FourOnes: flags[ruleKey{k.member, k.period, ""}]})
	}
	if err := tx.CreateInBatches(months, 500).Error; err != nil {
		return fmt.Errorf("bulk member months: %w", err)
	}
	branches := make([]int64, 0, len(months))
	for _, m := range months {
		branches = append(branches, m.BranchID)
	}
	committees, err := branchCommittees(tx, branches)
	if err != nil {
		return err
	}
	ds := make([]cpDelta, 0, len(months))
	for _, m := range months {
		ds = append(ds, cpDelta{m.Period, committees[m.BranchID], m.Points, 1})
	}
	return addCommitteePoints(tx, ds)
}
