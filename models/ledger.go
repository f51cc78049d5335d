package models

import (
	"strings"
	"time"
)

// Rule sources: how points under a rule are earned.
const (
	HowClaim   = "claim"   // the member claims, a secretary decides
	HowCheckin = "checkin" // checking in at an activity, approved by itself
	HowManual  = "manual"  // a secretary enters it with a reason
)

// Rule is one version of a catalogue rule. Editing a rule adds a version; entries keep
// the version they were earned under.
type Rule struct {
	ID              int64     `gorm:"primaryKey" json:"-"`
	Code            string    `json:"code"`
	Version         int       `json:"version"`
	Name            string    `json:"name"`
	Category        string    `json:"category"`
	How             string    `json:"how"`
	Points          Points    `json:"points"`      // per unit
	Unit            string    `json:"unit"`        // once, hour or any
	MonthlyCap      *Points   `json:"monthly_cap"` // nil: no cap
	NeedsEvidence   bool      `json:"needs_evidence"`
	NeedsAssignment bool      `json:"needs_assignment"`
	Active          bool      `json:"active"`
	CreatedBy       *int64    `json:"-"`
	CreatedAt       time.Time `json:"created_at"`
}

// Entry sources.
const (
	SourceClaim    = "claim"
	SourceCheckin  = "checkin"
	SourceManual   = "manual"
	SourceReversal = "reversal"
	SourceAppeal   = "appeal"
)

// Entry is one line of the append-only ledger. Hash covers the entry's content and
// PrevHash, the hash of the member's previous entry (Seq-1).
type Entry struct {
	ID          int64     `gorm:"primaryKey" json:"id"`
	MemberID    int64     `json:"member_id"`
	BranchID    int64     `json:"branch_id"`
	RuleCode    string    `json:"rule_code"`
	RuleVersion int       `json:"rule_version"`
	Category    string    `json:"category"`
	Period      Period    `json:"period"`
	OccurredOn  Date      `json:"occurred_on"`
	Points      Points    `json:"points"`
	Source      string    `json:"source"`
	ClaimID     *int64    `json:"claim_id"`
	ReversesID  *int64    `json:"reverses_id"`
	Reason      string    `json:"reason"`
	ActorID     *int64    `json:"actor_id"`
	Seq         int64     `json:"seq"`
	PrevHash    string    `json:"prev_hash"`
	Hash        string    `json:"hash"`
	CreatedAt   time.Time `json:"created_at"`
}

// MemberChain is the head of a member's hash chain.
type MemberChain struct {
	MemberID int64 `gorm:"primaryKey;autoIncrement:false"`
	Seq      int64
	LastHash string
}

// MemberTotal is a member's running total for one period, branch and category.
type MemberTotal struct {
	MemberID int64
	Period   Period
	BranchID int64
	Category string
	Points   Points
}

// MemberMonth is what a member earned in one month in one branch (a member who moved
// during the month has a row for each branch), with the member's 四个一 flags for the
// month: the rows leaderboards and ranks are read from.
type MemberMonth struct {
	MemberID int64
	Period   Period
	BranchID int64
	Points   Points
	FourOnes FourOnes
}

// FourOnes holds the four 四个一 duties a member has approved points for in a month, one
// bit each.
type FourOnes uint8

// The 四个一 rules, in the order of their bits.
var FourOnesRules = [4]string{"four_ones.listen_masses", "four_ones.guide_activists", "four_ones.read_theory", "four_ones.volunteer"}

// FourOnesBit is the bit of a 四个一 rule, or 0 for any other rule.
func FourOnesBit(ruleCode string) FourOnes {
	for i, c := range FourOnesRules {
		if c == ruleCode {
			return 1 << i
		}
	}
	return 0
}

// AllFourOnes is the mask of a complete month.
const AllFourOnes FourOnes = 15

// Complete reports whether all four duties are done.
func (f FourOnes) Complete() bool { return f == AllFourOnes }

// Flags names the four duties by the last part of their codes.
func (f FourOnes) Flags() map[string]bool {
	m := make(map[string]bool, 4)
	for i, c := range FourOnesRules {
		m[strings.TrimPrefix(c, "four_ones.")] = f&(1<<i) != 0
	}
	return m
}

// RuleTotal is a member's running total under one rule in one period, for caps.
type RuleTotal struct {
	MemberID int64
	Period   Period
	RuleCode string
	Points   Points
}

// ClosedPeriod closes a month for an org subtree until reopened.
type ClosedPeriod struct {
	ID           int64      `gorm:"primaryKey" json:"id"`
	OrgID        int64      `json:"org_id"`
	Period       Period     `json:"period"`
	ClosedBy     *int64     `json:"closed_by"`
	ClosedAt     time.Time  `json:"closed_at"`
	ReopenedBy   *int64     `json:"reopened_by"`
	ReopenedAt   *time.Time `json:"reopened_at"`
	ReopenReason *string    `json:"reopen_reason"`
	PublicUntil  *time.Time `json:"public_until"`
}

// Appeal states.
const (
	AppealOpen      = "open"
	AppealUpheld    = "upheld"
	AppealDismissed = "dismissed"
)

// Appeal is a member's 申诉 against their result of a closed month or against a rejected
// claim of it, filed inside the month's publicity window and decided by a leader or an
// admin above the member's branch. Subject is "month" or "claim:<id>": one appeal each.
type Appeal struct {
	ID             int64      `gorm:"primaryKey" json:"id"`
	MemberID       int64      `json:"member_id"`
	BranchID       int64      `json:"branch_id"`
	Period         Period     `json:"period"`
	ClaimID        *int64     `json:"claim_id"`
	Subject        string     `json:"-"`
	Reason         string     `json:"reason"`
	Status         string     `json:"status"`
	DecidedBy      *int64     `json:"decided_by"`
	DecidedAt      *time.Time `json:"decided_at"`
	DecisionReason *string    `json:"decision_reason"`
	EntryID        *int64     `json:"entry_id"`
	CreatedAt      time.Time  `json:"created_at"`
}
