package app

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-sql-driver/mysql"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"partyledger/models"
)

// GenesisHash is the PrevHash of a member's first entry.
const GenesisHash = "0000000000000000000000000000000000000000000000000000000000000000"

// Ledger appends entries and answers for them: manual bonuses and deductions,
// reversals, the entry list, and closed months.
type Ledger struct {
	db        *DB
	loc       *time.Location
	now       func() time.Time
	publicity time.Duration
}

// NewLedger returns the ledger use cases; months begin in loc, and a closed month is
// published (公示) for publicityDays.
func NewLedger(db *DB, loc *time.Location, publicityDays int) *Ledger {
	return &Ledger{db: db, loc: loc, now: time.Now, publicity: time.Duration(publicityDays) * 24 * time.Hour}
}

// writeTx runs fn in a transaction for ledger writes. On MySQL, sessions read committed
// data (set when connecting, see OpenDBPool): once a transaction holds a member's chain
// head, what it reads next (totals, caps) is what the transactions before it committed,
// not a snapshot from before it waited. A transaction the database chose to abort
// (deadlock, lock wait timeout) is run again, up to three times in all; fn must therefore
// set its results afresh on every run.
//
// On SQLite, the writes that queue for the one writer connection share a transaction
// (txGroup), each in a savepoint of its own.
func (d *DB) writeTx(ctx context.Context, fn func(tx *gorm.DB) error) error {
	if d.txg != nil {
		return d.txg.do(ctx, fn)
	}
	for attempt := 1; ; attempt++ {
		err := d.W.WithContext(ctx).Transaction(withCounts(fn))
		if err == nil || attempt == 3 || !isRetryable(err) || ctx.Err() != nil {
			return err
		}
	}
}

// isRetryable reports whether the database aborted a transaction that may succeed if run
// again: MySQL's deadlock (1213), lock wait timeout (1205) and MariaDB's "record changed
// since last read" (1020).
func isRetryable(err error) bool {
	var myErr *mysql.MySQLError
	return errors.As(err, &myErr) && (myErr.Number == 1213 || myErr.Number == 1205 || myErr.Number == 1020)
}

// entryInput is a new entry before the chain gives it a place.
type entryInput struct {
	MemberID   int64
	BranchID   int64
	Rule       models.Rule
	OccurredOn models.Date
	Points     models.Points
	Source     string
	ClaimID    *int64
	ReversesID *int64
	Reason     string
	ActorID    *int64
}

// memberState is what a ledger write needs to know once it holds a member.
type memberState struct {
	Head      models.MemberChain
	Period    models.Period
	RuleCode  string          // the rule asked about
	RuleTotal models.Points   // the member's total under RuleCode in Period
	FourOnes  models.FourOnes // the member's 四个一 flags in Period
	Branch    int64           // the branch the entries are written in
	Committee int64           // the nearest committee above Branch (0: none, or Branch is no branch)
	Month     *models.Points  // the member's points in Branch in Period (nil: no row yet)
	Elsewhere bool            // the member has points in Period in other branches too (moved meanwhile)
}

// lockMember makes tx the only writer of memberID's ledger until it ends. Every ledger
// write of a member begins here, so caps and totals read after it are current; writers of
// different members never wait for each other. It also reads the chain head, whether
// period is closed for the org at path or above it (EConflict), and the member's total
// under ruleCode in period (none asked for: "") and 四个一 flags.
func lockMember(tx *gorm.DB, memberID int64, path string, period models.Period, ruleCode string) (memberState, error) {
	return lockMemberIn(tx, memberID, path, period, ruleCode, false)
}

// lockMemberIn is lockMember that, when anyMonth is set, writes into a closed month too:
// only an upheld appeal does, the one exception to the lock.
func lockMemberIn(tx *gorm.DB, memberID int64, path string, period models.Period, ruleCode string, anyMonth bool) (memberState, error) {
	locked, err := lockMembers(tx, []memberLock{{MemberID: memberID, Path: path, Period: period, RuleCode: ruleCode}})
	if err != nil {
		return memberState{}, err
	}
	l := locked[memberID]
	if l.Closed && !anyMonth {
		return memberState{}, errClosed(period)
	}
	return l.memberState, nil
}

func errClosed(period models.Period) error {
	return models.Errorf(models.EConflict, "the month %s is closed", period)
}

// memberLock asks lockMembers for a member, to write entries of period in the branch at
// Path (as the caller read it) and to know their total under RuleCode.
type memberLock struct {
	MemberID int64
	Path     string
	Period   models.Period
	RuleCode string
}

// lockedMember is a member lockMembers holds: their state, and whether the month is
// closed for their branch or an org above it.
type lockedMember struct {
	memberState
	Closed bool
}

// lockMembers is lockMember for several members (each once) in three statements,
// whatever their number: it takes their chain heads in the order of their IDs (the order
// every writer takes them in, so two writers meeting on members wait rather than
// deadlock), their branches' org rows (shared, on MySQL: an org move, which updates the
// rows of the subtree it moves, waits for the entries in flight below it, and they for
// it, so an entry counts its points under the committee its branch is in when it
// commits), and then what they have in their months. A branch that moved since the
// caller read its path is read where it is now.
func lockMembers(tx *gorm.DB, reqs []memberLock) (map[int64]lockedMember, error) {
	heads := make([]models.MemberChain, len(reqs))
	var members, branches, orgs []int64
	var periods []models.Period
	for i, r := range reqs {
		ids := ancestorIDs(r.Path)
		if len(ids) == 0 {
			return nil, fmt.Errorf("lock member: no branch in path %q", r.Path)
		}
		heads[i] = models.MemberChain{MemberID: r.MemberID, LastHash: GenesisHash}
		members, branches, periods = append(members, r.MemberID), append(branches, ids[len(ids)-1]), append(periods, r.Period)
	}
	slices.SortFunc(heads, func(a, b models.MemberChain) int { return cmp.Compare(a.MemberID, b.MemberID) })
	// The upsert locks the head rows on MySQL (INSERT … ON DUPLICATE KEY UPDATE takes an
	// exclusive lock on each row it meets); SQLite has one writer anyway.
	err := tx.Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "member_id"}},
		DoUpdates: clause.Assignments(map[string]any{"seq": gorm.Expr("seq")})}).Create(&heads).Error
	if err != nil {
		return nil, dbError("lock member", err)
	}
	lock := ""
	if tx.Dialector.Name() == "mysql" {
		lock = " LOCK IN SHARE MODE"
	}
	var brs []struct {
		ID   int64
		Path string
	}
	if err := tx.Raw("SELECT id, path FROM orgs WHERE id IN ? ORDER BY id"+lock, branches).Scan(&brs).Error; err != nil {
		return nil, dbError("lock member", err)
	}
	paths := make(map[int64]string, len(brs))
	for _, b := range brs {
		paths[b.ID] = b.Path
		orgs = append(orgs, ancestorIDs(b.Path)...)
	}
	var rows []struct {
		K     string
		ID, N int64
		S, P  string
		B     int64
	}
	err = tx.Raw(`SELECT 'h' AS k, member_id AS id, seq AS n, last_hash AS s, '' AS p, 0 AS b FROM member_chains WHERE member_id IN ?
UNION ALL SELECT 'r', member_id, points, rule_code, period, 0 FROM rule_totals WHERE member_id IN ? AND period IN ?
UNION ALL SELECT 'm', member_id, points, '', period, branch_id FROM member_months WHERE member_id IN ? AND period IN ?
UNION ALL SELECT 'c', org_id, 0, '', period, 0 FROM closed_periods WHERE reopened_at IS NULL AND period IN ? AND org_id IN ?
UNION ALL SELECT 'o', id, 0, kind, '', 0 FROM orgs WHERE id IN ?`, members, members, periods, members, periods, periods, orgs, orgs).Scan(&rows).Error
	if err != nil {
		return nil, dbError("lock member", err)
	}
	type mp struct {
		m int64
		p string
	}
	type mpb struct {
		mp
		b int64
	}
	type mpr struct {
		mp
		r string
	}
	head := map[int64]models.MemberChain{}
	ruleTotals, monthRows := map[mpr]int64{}, map[mpb]int64{}
	closed, kinds := map[mp]bool{}, map[int64]models.OrgKind{}
	rowsOf := map[mp]int{} // a member's rows in a month, in any branch
	for _, r := range rows {
		switch r.K {
		case "h":
			head[r.ID] = models.MemberChain{MemberID: r.ID, Seq: r.N, LastHash: r.S}
		case "r":
			ruleTotals[mpr{mp{r.ID, r.P}, r.S}] = r.N
		case "m":
			monthRows[mpb{mp{r.ID, r.P}, r.B}] = r.N
			rowsOf[mp{r.ID, r.P}]++
		case "c":
			closed[mp{r.ID, r.P}] = true
		case "o":
			kinds[r.ID] = models.OrgKind(r.S)
		}
	}
	out := make(map[int64]lockedMember, len(reqs))
	for i, r := range reqs {
		path, ok := paths[branches[i]]
		h, okh := head[r.MemberID]
		if !ok || !okh {
			return nil, fmt.Errorf("lock member %d: no org %d", r.MemberID, branches[i])
		}
		key := mp{r.MemberID, string(r.Period)}
		st := memberState{Head: h, Period: r.Period, RuleCode: r.RuleCode, Branch: branches[i],
			RuleTotal: models.Points(ruleTotals[mpr{key, r.RuleCode}])}
		for _, code := range models.FourOnesRules {
			if ruleTotals[mpr{key, code}] > 0 {
				st.FourOnes |= models.FourOnesBit(code)
			}
		}
		ids := ancestorIDs(path)
		l := lockedMember{}
		for j := len(ids) - 1; j >= 0; j-- {
			l.Closed = l.Closed || closed[mp{ids[j], string(r.Period)}]
			if st.Committee == 0 && j < len(ids)-1 && kinds[ids[j]] == models.KindCommittee && kinds[st.Branch] == models.KindBranch {
				st.Committee = ids[j]
			}
		}
		n := rowsOf[key]
		if pts, ok := monthRows[mpb{key, st.Branch}]; ok {
			p := models.Points(pts)
			st.Month = &p
			n--
		}
		st.Elsewhere = n > 0
		l.memberState = st
		out[r.MemberID] = l
	}
	return out, nil
}

// capAward is what a rule awards of requested points when the member has total under it
// this month already: all of it, or what the monthly cap leaves (never below zero), and
// whether the cap cut it.
func capAward(rule models.Rule, requested, total models.Points) (models.Points, bool) {
	if rule.MonthlyCap == nil || total+requested <= *rule.MonthlyCap {
		return requested, false
	}
	return max(*rule.MonthlyCap-total, 0), true
}

// ruleVersion reads one version of a rule. Versions never change once written, so each is
// read from the database once per process. Returns ENotFound.
func (d *DB) ruleVersion(tx *gorm.DB, code string, version int) (models.Rule, error) {
	key := code + "\x00" + strconv.Itoa(version)
	if r, ok := d.rules.Load(key); ok {
		return r.(models.Rule), nil
	}
	var r models.Rule
	if err := tx.Where("code = ? AND version = ?", code, version).Take(&r).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return r, models.Errorf(models.ENotFound, "no rule %s version %d", code, version)
		}
		return r, dbError("rule version", err)
	}
	d.rules.Store(key, r)
	return r, nil
}

// appendEntry writes one entry in tx, which must hold the member (lockMember, which also
// refuses closed months, asked about the entry's rule and month): the entry takes the next
// place in the member's hash chain, and the running totals move with it.
func appendEntry(tx *gorm.DB, st *memberState, in entryInput, now time.Time) (models.Entry, error) {
	if in.OccurredOn.Period() != st.Period || (in.Rule.Code != st.RuleCode && models.FourOnesBit(in.Rule.Code) != 0) {
		return models.Entry{}, fmt.Errorf("append entry: the member was locked for %s %q, not %s %q", st.Period, st.RuleCode, in.OccurredOn.Period(), in.Rule.Code)
	}
	if in.BranchID != st.Branch {
		return models.Entry{}, fmt.Errorf("append entry: the member was locked in branch %d, not %d", st.Branch, in.BranchID)
	}
	e := chainEntry(&st.Head, in, now)
	w := []entryWrite{{Entry: e, moves: st.advance(e)}}
	if err := writeEntries(tx, w); err != nil {
		return e, err
	}
	return w[0].Entry, nil
}

// entryWrite is an entry to write, chained, with what it moves besides itself.
type entryWrite struct {
	models.Entry
	moves entryMoves
}

// entryMoves is what an entry moves besides its own row and its member's running totals.
type entryMoves struct {
	flags      models.FourOnes // the member's 四个一 flags in the month, after the entry
	flagsMoved bool            // they changed, and the member's rows of the month in other branches take them too
	counts     []cpDelta       // the member's move between the scores of their committee's month
}

// advance moves st past e, the entry chained after its head, and returns what else e moves.
func (st *memberState) advance(e models.Entry) entryMoves {
	if e.RuleCode == st.RuleCode {
		st.RuleTotal += e.Points
	}
	m := entryMoves{flags: st.FourOnes}
	if bit := models.FourOnesBit(e.RuleCode); bit != 0 {
		if m.flags &^= bit; st.RuleTotal > 0 {
			m.flags |= bit
		}
	}
	// The member moves from their old score in the committee's histogram to the new one.
	if pts := e.Points; st.Month == nil || pts != 0 {
		if st.Month != nil {
			pts += *st.Month
			m.counts = append(m.counts, cpDelta{e.Period, st.Committee, *st.Month, -1})
		}
		m.counts = append(m.counts, cpDelta{e.Period, st.Committee, pts, 1})
		st.Month = &pts
	}
	m.flagsMoved = m.flags != st.FourOnes && st.Elsewhere
	st.FourOnes = m.flags
	return m
}

// writeEntries writes entries of different members, each chained after its member's head
// and advanced (memberState.advance), in tx, which holds the members: the entries, their
// members' chain heads, running totals, month rows and committee counts, one statement
// for each whatever the number of entries. Sets the entries' IDs. An entry already
// recorded (its claim's, or a reversal of the same entry) is EConflict.
func writeEntries(tx *gorm.DB, w []entryWrite) error {
	if len(w) == 0 {
		return nil
	}
	n := len(w)
	entries := make([]models.Entry, n)
	heads := make([]models.MemberChain, n)
	totals := make([]models.MemberTotal, n)
	ruleTotals := make([]models.RuleTotal, n)
	months := make([]models.MemberMonth, n)
	var counts []cpDelta
	for i, x := range w {
		e := x.Entry
		entries[i] = e
		heads[i] = models.MemberChain{MemberID: e.MemberID, Seq: e.Seq, LastHash: e.Hash}
		totals[i] = models.MemberTotal{MemberID: e.MemberID, Period: e.Period, BranchID: e.BranchID, Category: e.Category, Points: e.Points}
		ruleTotals[i] = models.RuleTotal{MemberID: e.MemberID, Period: e.Period, RuleCode: e.RuleCode, Points: e.Points}
		months[i] = models.MemberMonth{MemberID: e.MemberID, Period: e.Period, BranchID: e.BranchID, Points: e.Points, FourOnes: x.moves.flags}
		counts = append(counts, x.moves.counts...)
	}
	if err := tx.Create(&entries).Error; err != nil {
		if isDuplicate(err) {
			return models.Errorf(models.EConflict, "this has been recorded already")
		}
		return dbError("append entry", err)
	}
	if n > 1 {
		// Read back (idsByKey): MySQL 8 does not promise consecutive IDs.
		if err := entryIDs(tx, entries); err != nil {
			return err
		}
	}
	for i := range w {
		w[i].ID = entries[i].ID
	}
	dialect := tx.Dialector.Name()
	excluded := func(col string) string {
		if dialect == "mysql" {
			return "VALUES(" + col + ")"
		}
		return "excluded." + col
	}
	upsert := func(rows any, set map[string]any, key ...string) error {
		cols := make([]clause.Column, len(key))
		for i, c := range key {
			cols[i] = clause.Column{Name: c}
		}
		return tx.Clauses(clause.OnConflict{Columns: cols, DoUpdates: clause.Assignments(set)}).Create(rows).Error
	}
	add := map[string]any{"points": gorm.Expr("points + " + excluded("points"))}
	if err := upsert(&heads, map[string]any{"seq": gorm.Expr(excluded("seq")), "last_hash": gorm.Expr(excluded("last_hash"))}, "member_id"); err != nil {
		return dbError("append entry", err)
	}
	if err := upsert(&totals, add, "member_id", "period", "branch_id", "category"); err != nil {
		return dbError("append entry: totals", err)
	}
	if err := upsert(&ruleTotals, add, "member_id", "period", "rule_code"); err != nil {
		return dbError("append entry: rule totals", err)
	}
	if err := upsert(&months, map[string]any{"points": add["points"], "four_ones": gorm.Expr(excluded("four_ones"))}, "member_id", "period", "branch_id"); err != nil {
		return dbError("append entry: month", err)
	}
	if err := addCommitteePointsLater(tx, counts); err != nil {
		return err
	}
	for _, x := range w {
		if x.moves.flagsMoved {
			// The flags are the member's, wherever in the month they were earned: a member
			// who moved branch carries them to every row of the month.
			if err := tx.Model(&models.MemberMonth{}).Where("member_id = ? AND period = ? AND branch_id <> ?", x.MemberID, x.Period, x.BranchID).
				Update("four_ones", x.moves.flags).Error; err != nil {
				return dbError("append entry: month", err)
			}
		}
	}
	return nil
}

// entryIDs sets the IDs of entries just written, by their (member, seq).
func entryIDs(tx *gorm.DB, entries []models.Entry) error {
	members, seqs := make([]int64, len(entries)), make([]int64, len(entries))
	for i, e := range entries {
		members[i], seqs[i] = e.MemberID, e.Seq
	}
	ids, err := idsByKey(tx, "entries", "member_id", "seq", members, seqs)
	if err != nil {
		return dbError("append entry", err)
	}
	for i := range entries {
		if entries[i].ID = ids[idKey[int64, int64]{entries[i].MemberID, entries[i].Seq}]; entries[i].ID == 0 {
			return fmt.Errorf("append entry: entry %d of member %d not found after writing it", entries[i].Seq, entries[i].MemberID)
		}
	}
	return nil
}

// idKey is the value of a two-column unique key.
type idKey[A, B comparable] struct {
	A A
	B B
}

// idsByKey reads the IDs of table's rows whose (colA, colB), a unique key, is among as ×
// bs. It is how the rows of a multi-row INSERT learn their IDs: they are consecutive on
// MariaDB and SQLite, but MySQL 8's default (innodb_autoinc_lock_mode = 2) does not
// promise it. table and the columns are the caller's constants, never input.
func idsByKey[A, B interface{ ~int64 | ~string }](tx *gorm.DB, table, colA, colB string, as []A, bs []B) (map[idKey[A, B]]int64, error) {
	rows, err := tx.Raw("SELECT id, "+colA+", "+colB+" FROM "+table+" WHERE "+colA+" IN ? AND "+colB+" IN ?", distinct(as), distinct(bs)).Rows()
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	ids := map[idKey[A, B]]int64{}
	for rows.Next() {
		var id int64
		var k idKey[A, B]
		if err := rows.Scan(&id, &k.A, &k.B); err != nil {
			return nil, err
		}
		ids[k] = id
	}
	return ids, rows.Err()
}

// chainEntry makes the entry that takes the next place after head, hashes it, and moves
// head on to it. Both the ledger's writes and bulkLedger build entries here, so that what
// either writes is what Verify recomputes.
func chainEntry(head *models.MemberChain, in entryInput, at time.Time) models.Entry {
	if in.ActorID != nil && *in.ActorID == 0 {
		in.ActorID = nil // the command line (SystemActor)
	}
	e := models.Entry{
		MemberID: in.MemberID, BranchID: in.BranchID, RuleCode: in.Rule.Code, RuleVersion: in.Rule.Version,
		Category: in.Rule.Category, Period: in.OccurredOn.Period(), OccurredOn: in.OccurredOn, Points: in.Points,
		Source: in.Source, ClaimID: in.ClaimID, ReversesID: in.ReversesID, Reason: in.Reason, ActorID: in.ActorID,
		Seq: head.Seq + 1, PrevHash: head.LastHash, CreatedAt: at.UTC().Truncate(time.Microsecond),
	}
	e.Hash = EntryHash(e)
	head.Seq, head.LastHash = e.Seq, e.Hash
	return e
}

// EntryHash is the SHA-256 of an entry's content and its PrevHash. Times are in UTC to
// the microsecond, as both databases store them.
func EntryHash(e models.Entry) string {
	opt := func(p *int64) string {
		if p == nil {
			return "-"
		}
		return strconv.FormatInt(*p, 10)
	}
	s := strings.Join([]string{
		strconv.FormatInt(e.Seq, 10), strconv.FormatInt(e.MemberID, 10), strconv.FormatInt(e.BranchID, 10),
		e.RuleCode, strconv.Itoa(e.RuleVersion), e.Category, string(e.Period), string(e.OccurredOn),
		strconv.FormatInt(int64(e.Points), 10), e.Source, opt(e.ClaimID), opt(e.ReversesID), e.Reason, opt(e.ActorID),
		e.CreatedAt.UTC().Format("2006-01-02T15:04:05.000000Z"), e.PrevHash,
	}, "\x1f")
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// ancestorIDs reads the org ids of a materialised path, root first.
func ancestorIDs(path string) []int64 {
	var ids []int64
	for _, p := range strings.Split(strings.Trim(path, "/"), "/") {
		if id, err := strconv.ParseInt(p, 10, 64); err == nil {
			ids = append(ids, id)
		}
	}
	return ids
}

// currentRule reads the newest version of a rule. Returns ENotFound.
func currentRule(tx *gorm.DB, code string) (models.Rule, error) {
	var r models.Rule
	err := tx.Where("code = ?", code).Order("version DESC").Take(&r).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return r, models.Errorf(models.ENotFound, "no rule %q", code)
	}
	return r, dbError("get rule", err)
}

func checkReason(reason string) (string, error) {
	reason = strings.TrimSpace(reason)
	if reason == "" || utf8.RuneCountInString(reason) > 500 {
		return "", models.InvalidField("reason", "is required, at most 500 characters")
	}
	return reason, nil
}

// ManualInput is what POST /entries takes.
type ManualInput struct {
	MemberID   int64         `json:"member_id" validate:"required,gt=0"`
	RuleCode   string        `json:"rule_code" validate:"required,oneof=adjust.bonus adjust.deduct"`
	Points     models.Points `json:"points"`
	Reason     string        `json:"reason" validate:"notblank,max=500"`
	OccurredOn string        `json:"occurred_on" validate:"required"`
}

// Manual records a bonus or a deduction by a secretary over the member's branch. Points
// are given as a positive amount; a deduction is entered negative. Returns EInvalid,
// ENotFound, EForbidden (one's own points) or EConflict (closed month).
func (l *Ledger) Manual(ctx context.Context, a *Actor, in ManualInput) (models.Entry, error) {
	if err := Validate(in); err != nil {
		return models.Entry{}, err
	}
	if in.Points <= 0 {
		return models.Entry{}, models.InvalidField("points", "must be greater than 0; a deduction is entered with adjust.deduct")
	}
	day, err := models.ParseDate(in.OccurredOn)
	if err != nil {
		return models.Entry{}, models.InvalidField("occurred_on", err.Error())
	}
	if day > models.Today(l.now(), l.loc) {
		return models.Entry{}, models.InvalidField("occurred_on", "is in the future")
	}
	reason, err := checkReason(in.Reason)
	if err != nil {
		return models.Entry{}, err
	}
	if in.MemberID == a.ID {
		return models.Entry{}, models.Errorf(models.EForbidden, "nobody records points for themself")
	}
	var e models.Entry
	err = l.db.writeTx(ctx, func(tx *gorm.DB) error {
		m, err := loadMember(ctx, tx, in.MemberID)
		if err := hidden(err, err == nil && a.Can(models.RoleSecretary, m.BranchPath), errMemberNotFound); err != nil {
			return err
		}
		rule, err := currentRule(tx, in.RuleCode)
		if err != nil {
			return err
		}
		st, err := lockMember(tx, m.ID, m.BranchPath, day.Period(), rule.Code)
		if err != nil {
			return err
		}
		points := in.Points
		if rule.Code == "adjust.deduct" {
			points = -points
		}
		e, err = appendEntry(tx, &st, entryInput{MemberID: m.ID, BranchID: m.BranchID, Rule: rule, OccurredOn: day, Points: points,
			Source: models.SourceManual, Reason: reason, ActorID: &a.ID}, l.now())
		if err != nil {
			return err
		}
		return writeAudit(tx, &a.ID, &m.BranchID, "entry.manual", "entry", e.ID, nil, e)
	})
	return e, err
}

// Reverse cancels an entry with a new one of the opposite amount in the same month, by a
// secretary over the branch where it was earned. An entry is reversed once; a reversal
// is not reversed (enter a new entry instead). Returns EInvalid, ENotFound or EConflict.
func (l *Ledger) Reverse(ctx context.Context, a *Actor, id int64, reason string) (models.Entry, error) {
	reason, err := checkReason(reason)
	if err != nil {
		return models.Entry{}, err
	}
	var rev models.Entry
	err = l.db.writeTx(ctx, func(tx *gorm.DB) error {
		var orig models.Entry
		if err := tx.Take(&orig, id).Error; err != nil {
			if errors.Is(err, gorm.ErrRecordNotFound) {
				return models.Errorf(models.ENotFound, "no such entry")
			}
			return dbError("reverse", err)
		}
		branch, err := getOrg(ctx, tx, orig.BranchID)
		if err := hidden(err, err == nil && a.Can(models.RoleSecretary, branch.Path), models.Errorf(models.ENotFound, "no such entry")); err != nil {
			return err
		}
		if orig.MemberID == a.ID {
			return models.Errorf(models.EForbidden, "nobody corrects their own points")
		}
		if orig.Source == models.SourceReversal {
			return models.Errorf(models.EConflict, "a reversal cannot be reversed; record a new entry instead")
		}
		st, err := lockMember(tx, orig.MemberID, branch.Path, orig.Period, orig.RuleCode)
		if err != nil {
			return err
		}
		rule, err := l.db.ruleVersion(tx, orig.RuleCode, orig.RuleVersion)
		if err != nil {
			return err
		}
		rev, err = appendEntry(tx, &st, entryInput{MemberID: orig.MemberID, BranchID: orig.BranchID, Rule: rule, OccurredOn: orig.OccurredOn,
			Points: -orig.Points, Source: models.SourceReversal, ReversesID: &orig.ID, Reason: reason, ActorID: &a.ID}, l.now())
		if err != nil {
			var me *models.Error
			if errors.As(err, &me) && me.Code == models.EConflict {
				return models.Errorf(models.EConflict, "entry %d has been reversed already", orig.ID)
			}
			return err
		}
		return writeAudit(tx, &a.ID, &orig.BranchID, "entry.reversed", "entry", orig.ID, orig, rev)
	})
	return rev, err
}

// Entries lists a member's ledger lines, newest first, optionally for one month: the
// member, secretaries over their branch and leaders above it may read them.
// Returns EInvalid or ENotFound.
func (l *Ledger) Entries(ctx context.Context, a *Actor, memberID int64, period string, p Page) (List[models.Entry], error) {
	m, err := loadMember(ctx, l.db.R, memberID)
	if err := hidden(err, err == nil && (m.ID == a.ID || a.CanAny(m.BranchPath, models.RoleSecretary, models.RoleLeader)), errMemberNotFound); err != nil {
		return List[models.Entry]{}, err
	}
	q := l.db.R.WithContext(ctx).Where("member_id = ?", memberID)
	if period != "" {
		per, err := models.ParsePeriod(period)
		if err != nil {
			return List[models.Entry]{}, models.InvalidField("period", err.Error())
		}
		q = q.Where("period = ?", per)
	}
	if p.After > 0 {
		q = q.Where("id < ?", p.After)
	}
	var rows []models.Entry
	if err := q.Order("id DESC").Limit(p.Limit + 1).Find(&rows).Error; err != nil {
		return List[models.Entry]{}, dbError("list entries", err)
	}
	return pageOf(rows, p.Limit, func(e models.Entry) int64 { return e.ID }), nil
}

// ClosePeriod closes a month for an org subtree the actor administers. Returns EInvalid,
// ENotFound or EConflict (closed already).
func (l *Ledger) ClosePeriod(ctx context.Context, a *Actor, period string, orgID int64) (models.ClosedPeriod, error) {
	per, err := models.ParsePeriod(period)
	if err != nil {
		return models.ClosedPeriod{}, models.InvalidField("period", err.Error())
	}
	if per > models.Today(l.now(), l.loc).Period() {
		return models.ClosedPeriod{}, models.InvalidField("period", "has not begun yet")
	}
	var cp models.ClosedPeriod
	err = l.db.writeTx(ctx, func(tx *gorm.DB) error {
		o, err := getOrg(ctx, tx, orgID)
		if err := hidden(err, err == nil && a.Can(models.RoleAdmin, o.Path), errOrgNotFound); err != nil {
			return err
		}
		if o.Kind == models.KindGroup {
			// Entries are a branch's; a group's close would stop none and say it had.
			return models.InvalidField("org_id", "a party group's months close with its branch's; close the branch")
		}
		if err := lockSubtree(tx, o); err != nil {
			return err
		}
		var open int64
		if err := tx.Model(&models.ClosedPeriod{}).Where("org_id = ? AND period = ? AND reopened_at IS NULL", orgID, per).Count(&open).Error; err != nil {
			return dbError("close period", err)
		}
		if open > 0 {
			return models.Errorf(models.EConflict, "%s is closed for this org already", per)
		}
		now := l.now().UTC().Truncate(time.Microsecond)
		until := now.Add(l.publicity)
		cp = models.ClosedPeriod{OrgID: orgID, Period: per, ClosedBy: &a.ID, ClosedAt: now, PublicUntil: &until}
		if err := tx.Create(&cp).Error; err != nil {
			return dbError("close period", err)
		}
		return writeAudit(tx, &a.ID, &orgID, "period.closed", "period", cp.ID, nil, cp)
	})
	return cp, err
}

// lockSubtree takes, on MySQL, the rows of the branches in the subtree of org o for
// update, and then o's own row (SQLite has one writer). Every ledger write takes its
// branch's row shared (lockMembers) before it reads whether its month is closed, so a
// write in flight when a month closes either commits before the close or waits for it
// and finds the month closed: none lands in a month after it closed. Two closes of one
// org run one after the other, and the second finds the first's row. The order is the
// writers': branches by id (read first, then locked by id: a range over paths would lock
// in the order of the paths), then the orgs above them, which a write's foreign keys take
// shared later (its committee's scores).
func lockSubtree(tx *gorm.DB, o models.Org) error {
	if tx.Dialector.Name() != "mysql" {
		return nil
	}
	cond, args := subtree("path", o.Path)
	var branches, locked []int64
	if err := tx.Raw("SELECT id FROM orgs WHERE "+cond+" AND kind = 'branch'", args...).Scan(&branches).Error; err != nil {
		return dbError("lock orgs", err)
	}
	lock := func(ids []int64) error {
		return dbError("lock orgs", forUpdate(tx).Model(&models.Org{}).Where("id IN ?", ids).Order("id").Pluck("id", &locked).Error)
	}
	for len(branches) > 0 {
		n := min(len(branches), 1000)
		if err := lock(branches[:n]); err != nil {
			return err
		}
		branches = branches[n:]
	}
	if o.Kind == models.KindBranch {
		return nil
	}
	return lock([]int64{o.ID}) // after its branches, whatever its id: lockMembers' order
}

// ReopenPeriod reopens a month closed for an org, with a reason. Returns EInvalid,
// ENotFound or EConflict (not closed for that org).
func (l *Ledger) ReopenPeriod(ctx context.Context, a *Actor, period string, orgID int64, reason string) (models.ClosedPeriod, error) {
	per, err := models.ParsePeriod(period)
	if err != nil {
		return models.ClosedPeriod{}, models.InvalidField("period", err.Error())
	}
	if reason, err = checkReason(reason); err != nil {
		return models.ClosedPeriod{}, err
	}
	var cp models.ClosedPeriod
	err = l.db.writeTx(ctx, func(tx *gorm.DB) error {
		o, err := getOrg(ctx, tx, orgID)
		if err := hidden(err, err == nil && a.Can(models.RoleAdmin, o.Path), errOrgNotFound); err != nil {
			return err
		}
		if err := tx.Where("org_id = ? AND period = ? AND reopened_at IS NULL", orgID, per).Take(&cp).Error; err != nil {
			if errors.Is(err, gorm.ErrRecordNotFound) {
				return models.Errorf(models.EConflict, "%s is not closed for this org", per)
			}
			return dbError("reopen period", err)
		}
		before := cp
		now := l.now().UTC().Truncate(time.Microsecond)
		res := tx.Model(&models.ClosedPeriod{}).Where("id = ? AND reopened_at IS NULL", cp.ID).
			Updates(map[string]any{"reopened_by": a.ID, "reopened_at": now, "reopen_reason": reason})
		if res.Error != nil {
			return dbError("reopen period", res.Error)
		}
		if res.RowsAffected == 0 {
			return models.Errorf(models.EConflict, "%s was reopened meanwhile", per)
		}
		cp.ReopenedBy, cp.ReopenedAt, cp.ReopenReason = &a.ID, &now, &reason
		return writeAudit(tx, &a.ID, &orgID, "period.reopened", "period", cp.ID, before, cp)
	})
	return cp, err
}
