package app

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/base64"
	"fmt"
	"math/big"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"

	"partyledger/models"
)

// Aggregates answers the read side of the ledger: member and branch summaries,
// leaderboards and the monthly report. Everything is read from member_months (and the
// per-category totals), which the ledger keeps in the entries' own transactions.
type Aggregates struct {
	db        *DB
	loc       *time.Location
	now       func() time.Time
	stars     []models.Points
	maxReport int
}

// NewAggregates returns the read side; stars are the year totals that earn a second,
// third, fourth and fifth star; maxReport caps the rows of a report.
func NewAggregates(db *DB, loc *time.Location, stars []models.Points, maxReport int) *Aggregates {
	return &Aggregates{db: db, loc: loc, now: time.Now, stars: stars, maxReport: maxReport}
}

// Stars is the star rating (1 to 5) of a year total.
func (g *Aggregates) Stars(total models.Points) int {
	n := 1
	for _, t := range g.stars {
		if total >= t {
			n++
		}
	}
	return n
}

// MemberRow is one line of a member leaderboard.
type MemberRow struct {
	Rank     int64         `json:"rank"`
	MemberID int64         `json:"member_id"`
	Name     string        `json:"name"`
	BranchID int64         `json:"branch_id"`
	Points   models.Points `json:"points"`
}

// MyRank is the caller's own place on a leaderboard.
type MyRank struct {
	Rank   int64         `json:"rank"`
	Points models.Points `json:"points"`
}

// MemberBoard is a page of a member leaderboard and the caller's own row (nil when the
// caller has no place in that org).
type MemberBoard struct {
	Items      []MemberRow `json:"items"`
	NextCursor *string     `json:"next_cursor"`
	Me         *MyRank     `json:"me"`
}

// boardOrg reads the org of a leaderboard and checks that the actor may see it: members
// inside it, and secretaries, leaders and admins over it. Returns ENotFound.
func (g *Aggregates) boardOrg(ctx context.Context, a *Actor, orgID int64) (models.Org, error) {
	o, err := g.org(ctx, a, orgID)
	if err != nil {
		return o, err
	}
	if !insideOrg(a, o) && !a.CanAny(o.Path, staffRoles...) {
		return o, errOrgNotFound
	}
	return o, nil
}

// org reads an org, from the actor's own line and roles when it is there.
func (g *Aggregates) org(ctx context.Context, a *Actor, id int64) (models.Org, error) {
	if o, ok := a.knownOrg(id); ok {
		return o, nil
	}
	return getOrg(ctx, g.db.R, id)
}

// insideOrg reports whether the actor is a member of a branch inside o (for a group: a
// member of the group).
func insideOrg(a *Actor, o models.Org) bool {
	if a.BranchKind != models.KindBranch {
		return false
	}
	if o.Kind == models.KindGroup {
		return a.GroupID != nil && *a.GroupID == o.ID
	}
	return models.PathContains(o.Path, a.BranchPath)
}

// period reads the period query parameter; absent, it is the current month.
func (g *Aggregates) period(s string) (models.Period, error) {
	if s == "" {
		return models.PeriodOf(g.now(), g.loc), nil
	}
	return parsePeriodField(s)
}

func parsePeriodField(s string) (models.Period, error) {
	p, err := models.ParsePeriod(s)
	if err != nil {
		return p, models.InvalidField("period", err.Error())
	}
	return p, nil
}

// memberCursor is where a member leaderboard page ends: rows sort by points, highest
// first, then by member id, highest first.
type memberCursor struct {
	Points models.Points
	Member int64
}

func (c memberCursor) encode() string {
	return base64.RawURLEncoding.EncodeToString([]byte("m:" + strconv.FormatInt(int64(c.Points), 10) + ":" + strconv.FormatInt(c.Member, 10)))
}

func parseMemberCursor(s string) (*memberCursor, error) {
	if s == "" {
		return nil, nil
	}
	bad := models.InvalidField("cursor", "is not a cursor this server gave out")
	raw, err := base64.RawURLEncoding.DecodeString(s)
	parts := strings.Split(string(raw), ":")
	if err != nil || len(parts) != 3 || parts[0] != "m" {
		return nil, bad
	}
	p, err1 := strconv.ParseInt(parts[1], 10, 64)
	m, err2 := strconv.ParseInt(parts[2], 10, 64)
	if err1 != nil || err2 != nil || m < 0 {
		return nil, bad
	}
	return &memberCursor{Points: models.Points(p), Member: m}, nil
}

// after reports whether a row sorts after the cursor.
func (c *memberCursor) after(points models.Points, member int64) bool {
	return c == nil || points < c.Points || (points == c.Points && member < c.Member)
}

// MemberBoard is a page of the members of an org subtree by their points in period, with
// competition ranks (1, 2, 2, 4). A member who moved branch during the month has a row for
// each branch, with the points earned there; active members who earned nothing rank at
// zero. Pages follow a keyset cursor, so they never repeat or skip a row. Returns
// EInvalid or ENotFound (no such org, or not visible to the actor).
func (g *Aggregates) MemberBoard(ctx context.Context, a *Actor, orgID int64, period, cursor string, limit int) (MemberBoard, error) {
	per, err := g.period(period)
	if err != nil {
		return MemberBoard{}, err
	}
	cur, err := parseMemberCursor(cursor)
	if err != nil {
		return MemberBoard{}, err
	}
	o, err := g.boardOrg(ctx, a, orgID)
	if err != nil {
		return MemberBoard{}, err
	}
	s := scopeOf(o)
	if s.small() {
		return g.smallBoard(ctx, a, s, per, cur, limit)
	}
	db := g.db.R.WithContext(ctx)
	rows, err := s.page(db, per, cur, limit+1)
	if err != nil {
		return MemberBoard{}, err
	}
	board := MemberBoard{Items: rows}
	if len(rows) > limit {
		board.Items = rows[:limit]
		c := memberCursor{rows[limit-1].Points, rows[limit-1].MemberID}.encode()
		board.NextCursor = &c
	}
	// The places of the page's first row and of the caller's own, in one count.
	mine, err := g.myPoints(ctx, s, a, per)
	if err != nil {
		return MemberBoard{}, err
	}
	var places []place
	if len(board.Items) > 0 {
		places = append(places, place{Points: board.Items[0].Points, Member: board.Items[0].MemberID, Ties: true})
	}
	if mine != nil {
		places = append(places, place{Points: *mine, Member: a.ID})
	}
	above, before, err := s.placeCounts(ctx, g.db.R, per, places...)
	if err != nil {
		return MemberBoard{}, err
	}
	if mine != nil {
		board.Me = &MyRank{Rank: above[len(above)-1] + 1, Points: *mine}
	}
	if len(board.Items) > 0 {
		base := above[0] + before[0] // rows before the page
		for i := range board.Items {
			if i > 0 && board.Items[i].Points == board.Items[i-1].Points {
				board.Items[i].Rank = board.Items[i-1].Rank
			} else if i == 0 {
				board.Items[i].Rank = above[0] + 1
			} else {
				board.Items[i].Rank = base + int64(i) + 1
			}
		}
	}
	return board, nil
}

// smallBoard is MemberBoard for a branch or a group in one: its whole month (tens of
// members) is read at once and ranked here. The larger scopes read a page and count places
// in the database instead (s.page, s.placeCounts), since their month may hold a million
// rows.
func (g *Aggregates) smallBoard(ctx context.Context, a *Actor, s scope, per models.Period, cur *memberCursor, limit int) (MemberBoard, error) {
	rows, err := g.branchMonth(ctx, s, per)
	if err != nil {
		return MemberBoard{}, err
	}
	slices.SortFunc(rows, func(a, b MemberRow) int {
		return cmp.Or(cmp.Compare(b.Points, a.Points), cmp.Compare(b.MemberID, a.MemberID))
	})
	board := MemberBoard{Items: []MemberRow{}}
	for i := range rows {
		rows[i].Rank = int64(i) + 1
		if i > 0 && rows[i].Points == rows[i-1].Points {
			rows[i].Rank = rows[i-1].Rank
		}
		// The caller's row: in one branch a member has one row at most, and one with none
		// is among the rows at zero when active there now (as myPoints places them).
		if rows[i].MemberID == a.ID {
			board.Me = &MyRank{Rank: rows[i].Rank, Points: rows[i].Points}
		}
	}
	start := sort.Search(len(rows), func(i int) bool { return cur.after(rows[i].Points, rows[i].MemberID) })
	end := min(start+limit, len(rows))
	board.Items = append(board.Items, rows[start:end]...)
	if end < len(rows) {
		c := memberCursor{rows[end-1].Points, rows[end-1].MemberID}.encode()
		board.NextCursor = &c
	}
	return board, nil
}

// branchMonth reads the leaderboard rows of a branch, or of a group in one, for period:
// the member_months rows of the branch, and its active members now who have none, at zero
// (as noRowWhere selects them). Both come in one statement, so from one snapshot, as two
// index ranges: the branch's rows of the month, and its members with their names
// (idx_members_branch holds them), rather than a lookup per member. Only members who earned
// points here and have since moved to another branch need their names read by id. The
// rows are scanned by hand, without maps: this is the read members make most often, and
// what it allocates sets how often the collector runs.
func (g *Aggregates) branchMonth(ctx context.Context, s scope, per models.Period) ([]MemberRow, error) {
	branch, group := s.Org.ID, int64(0)
	if s.Org.Kind == models.KindGroup {
		branch, group = *s.Org.ParentID, s.Org.ID
	}
	type member struct {
		id, group int64 // group 0: none
		name      string
		active    bool
	}
	rows, err := g.db.sqlR.QueryContext(ctx, `SELECT mm.member_id, '' AS name, '' AS status, NULL AS group_id, mm.points, 1 AS has_row FROM member_months mm WHERE mm.period = ? AND mm.branch_id = ?
UNION ALL SELECT m.id, m.name, m.status, m.group_id, 0, 0 FROM members m WHERE m.branch_id = ?`, string(per), branch, branch)
	if err != nil {
		return nil, dbError("leaderboard", err)
	}
	defer rows.Close()
	earned := make([]MemberRow, 0, 64) // the month's rows, without names yet
	roster := make([]member, 0, 64)    // the branch's members now
	// Scanned into once: each of these escapes to the heap.
	var m member
	var status sql.RawBytes
	var groupID sql.NullInt64
	var points models.Points
	var hasRow bool
	for rows.Next() {
		if err := rows.Scan(&m.id, &m.name, &status, &groupID, &points, &hasRow); err != nil {
			return nil, dbError("leaderboard", err)
		}
		if hasRow {
			earned = append(earned, MemberRow{MemberID: m.id, BranchID: branch, Points: points})
			continue
		}
		m.group, m.active = groupID.Int64, string(status) == string(models.StatusActive)
		roster = append(roster, m)
	}
	if err := rows.Err(); err != nil {
		return nil, dbError("leaderboard", err)
	}
	rows.Close()
	byID := func(ms []member) {
		slices.SortFunc(ms, func(a, b member) int { return cmp.Compare(a.id, b.id) })
	}
	find := func(ms []member, id int64) (member, bool) {
		i, ok := slices.BinarySearchFunc(ms, id, func(m member, id int64) int { return cmp.Compare(m.id, id) })
		if !ok {
			return member{}, false
		}
		return ms[i], true
	}
	inScope := func(m member) bool { return group == 0 || m.group == group }
	byID(roster)
	slices.SortFunc(earned, func(a, b MemberRow) int { return cmp.Compare(a.MemberID, b.MemberID) })
	out := make([]MemberRow, 0, len(earned)+len(roster))
	var away []MemberRow // rows of members who have moved to another branch since
	for _, r := range earned {
		m, ok := find(roster, r.MemberID)
		if !ok {
			away = append(away, r)
		} else if inScope(m) {
			r.Name = m.name
			out = append(out, r)
		}
	}
	if len(away) > 0 {
		ids := make([]int64, len(away))
		for i, r := range away {
			ids[i] = r.MemberID
		}
		var read []struct {
			ID      int64
			Name    string
			GroupID *int64
		}
		if err := scan(g.db.R.WithContext(ctx).Raw("SELECT id, name, group_id FROM members WHERE id IN ?", ids), &read); err != nil {
			return nil, dbError("leaderboard", err)
		}
		moved := make([]member, 0, len(read))
		for _, x := range read {
			m := member{id: x.ID, name: x.Name}
			if x.GroupID != nil {
				m.group = *x.GroupID
			}
			moved = append(moved, m)
		}
		byID(moved)
		for _, r := range away {
			if m, ok := find(moved, r.MemberID); ok && inScope(m) {
				r.Name = m.name
				out = append(out, r)
			}
		}
	}
	for _, m := range roster {
		if _, ok := slices.BinarySearchFunc(earned, m.id, func(r MemberRow, id int64) int { return cmp.Compare(r.MemberID, id) }); !ok && m.active && inScope(m) {
			out = append(out, MemberRow{MemberID: m.id, Name: m.name, BranchID: branch})
		}
	}
	return out, nil
}

// page reads up to n rows after cur: member_months rows merged with the members who have
// no row, at zero.
func (s scope) page(db *gorm.DB, per models.Period, cur *memberCursor, n int) ([]MemberRow, error) {
	var conds []string
	var args []any
	if cur != nil {
		conds, args = []string{"(mm.points < ? OR (mm.points = ? AND mm.member_id < ?))"}, []any{cur.Points, cur.Points, cur.Member}
	}
	where, wargs := s.rowsWhere(per, conds, args...)
	var rows []MemberRow
	err := scan(db.Raw(`SELECT mm.member_id, m.name, mm.branch_id, mm.points FROM member_months mm JOIN members m ON m.id = mm.member_id
WHERE `+where+` ORDER BY mm.points DESC, mm.member_id DESC LIMIT ?`, append(wargs, n)...), &rows)
	if err != nil {
		return nil, dbError("leaderboard", err)
	}
	// Members with no row come in at zero points; they can be on this page only if it
	// reaches zero.
	if (len(rows) == n && rows[n-1].Points > 0) || (cur != nil && cur.Points < 0) {
		return rows, nil
	}
	var zconds []string
	var zargs []any
	if cur != nil && cur.Points == 0 {
		zconds, zargs = []string{"m.id < ?"}, []any{cur.Member}
	}
	zwhere, zwargs := s.noRowWhere(per, zconds, zargs...)
	var zero []MemberRow
	if err := scan(db.Raw("SELECT m.id AS member_id, m.name, m.branch_id, 0 AS points FROM members m WHERE "+zwhere+" ORDER BY m.id DESC LIMIT ?",
		append(zwargs, n)...), &zero); err != nil {
		return nil, dbError("leaderboard", err)
	}
	merged := make([]MemberRow, 0, min(n, len(rows)+len(zero)))
	i, j := 0, 0
	for len(merged) < n && (i < len(rows) || j < len(zero)) {
		if j == len(zero) || (i < len(rows) && (rows[i].Points > 0 || (rows[i].Points == 0 && rows[i].MemberID > zero[j].MemberID))) {
			merged = append(merged, rows[i])
			i++
		} else {
			merged = append(merged, zero[j])
			j++
		}
	}
	return merged, nil
}

// myPoints is what places the actor in the scope: the points of their row in the branch
// they are in now when it lies in the scope, else of their best row there, or zero when
// they are inside it with no row; nil when they have no place in it. Only the scopes
// above a branch come here: a branch's or a group's board is read whole (smallBoard).
func (g *Aggregates) myPoints(ctx context.Context, s scope, a *Actor, per models.Period) (*models.Points, error) {
	// The actor's rows of the month, by the unique key, kept when inside the scope.
	var rows []struct {
		BranchID int64
		Points   models.Points
		Path     string
	}
	if err := scan(g.db.R.WithContext(ctx).Raw("SELECT mm.branch_id, mm.points, o.path FROM member_months mm JOIN orgs o ON o.id = mm.branch_id WHERE mm.member_id = ? AND mm.period = ?", a.ID, per), &rows); err != nil {
		return nil, dbError("leaderboard", err)
	}
	var pts models.Points
	found, home := false, false
	for _, r := range rows {
		in := models.PathContains(s.Org.Path, r.Path)
		switch {
		case !in || home:
		case r.BranchID == a.BranchID:
			pts, found, home = r.Points, true, true
		case !found || r.Points > pts:
			pts, found = r.Points, true
		}
	}
	if !found {
		if a.Status != models.StatusActive || !insideOrg(a, s.Org) {
			return nil, nil
		}
		pts = 0
	}
	return &pts, nil
}

// BranchRow is one line of a branch leaderboard and the figures of a branch summary.
type BranchRow struct {
	Rank              int64         `json:"rank"`
	BranchID          int64         `json:"branch_id"`
	Name              string        `json:"name"`
	Members           int64         `json:"members"`
	Total             models.Points `json:"total"`
	Average           models.Points `json:"average"`
	CompletionRate    float64       `json:"completion_rate"`
	ParticipationRate float64       `json:"participation_rate"`
	complete          int64
	participants      int64
}

// BranchBoard is a page of a branch leaderboard.
type BranchBoard struct {
	Items      []BranchRow `json:"items"`
	NextCursor *string     `json:"next_cursor"`
	By         string      `json:"by"`
}

// branchRows computes the month's figures of the branches whose ids come from branchSQL
// (a subquery over orgs o, or "" for every branch). A branch's members are its active
// members now plus those who earned points there this month and have since left.
func (g *Aggregates) branchRows(ctx context.Context, per models.Period, branchSQL string, args ...any) ([]BranchRow, error) {
	db := g.db.R.WithContext(ctx)
	filter := func(col string) string {
		if branchSQL == "" {
			return ""
		}
		return " AND " + col + " IN " + branchSQL
	}
	var rows []BranchRow
	if err := scan(db.Raw("SELECT o.id AS branch_id, o.name FROM orgs o WHERE o.kind = 'branch'"+filter("o.id"), args...), &rows); err != nil {
		return nil, dbError("branch figures", err)
	}
	idx := make(map[int64]int, len(rows))
	for i, r := range rows {
		idx[r.BranchID] = i
	}
	var roster []struct{ BranchID, N int64 }
	if err := scan(db.Raw("SELECT m.branch_id, COUNT(*) AS n FROM members m WHERE m.status = 'active'"+filter("m.branch_id")+" GROUP BY m.branch_id", args...), &roster); err != nil {
		return nil, dbError("branch figures", err)
	}
	for _, r := range roster {
		if i, ok := idx[r.BranchID]; ok {
			rows[i].Members += r.N
		}
	}
	var earned []struct {
		BranchID                                int64
		Total, Participants, Complete, Departed int64
	}
	if err := scan(db.Raw(`SELECT mm.branch_id, SUM(mm.points) AS total,
  SUM(CASE WHEN mm.points > 0 THEN 1 ELSE 0 END) AS participants,
  SUM(CASE WHEN mm.four_ones = ? THEN 1 ELSE 0 END) AS complete,
  SUM(CASE WHEN m.branch_id = mm.branch_id AND m.status = 'active' THEN 0 ELSE 1 END) AS departed
FROM member_months mm JOIN members m ON m.id = mm.member_id
WHERE mm.period = ?`+filter("mm.branch_id")+` GROUP BY mm.branch_id`, append([]any{models.AllFourOnes, per}, args...)...), &earned); err != nil {
		return nil, dbError("branch figures", err)
	}
	for _, e := range earned {
		if i, ok := idx[e.BranchID]; ok {
			r := &rows[i]
			r.Total, r.participants, r.complete = models.Points(e.Total), e.Participants, e.Complete
			r.Members += e.Departed
		}
	}
	for i := range rows {
		r := &rows[i]
		if r.Members > 0 {
			r.Average = models.Points(roundDiv(int64(r.Total), r.Members))
			r.CompletionRate = shareOf(r.complete, r.Members)
			r.ParticipationRate = shareOf(r.participants, r.Members)
		}
	}
	return rows, nil
}

// roundDiv divides, rounding half away from zero.
func roundDiv(a, b int64) int64 {
	if a < 0 {
		return -((-a + b/2) / b)
	}
	return (a + b/2) / b
}

// shareOf is n/d to three decimals.
func shareOf(n, d int64) float64 {
	return float64(roundDiv(n*1000, d)) / 1000
}

// branchKey is what a branch ranks by, as an exact fraction.
func branchKey(r BranchRow, by string) *big.Rat {
	den := max(r.Members, 1)
	switch by {
	case "total":
		return big.NewRat(int64(r.Total), 1)
	case "completion":
		return big.NewRat(r.complete, den)
	}
	return big.NewRat(int64(r.Total), den)
}

// rankBranches sorts rows by key, highest first, then by branch id, and gives them
// competition ranks.
func rankBranches(rows []BranchRow, by string) {
	keys := make(map[int64]*big.Rat, len(rows))
	for _, r := range rows {
		keys[r.BranchID] = branchKey(r, by)
	}
	sort.Slice(rows, func(i, j int) bool {
		if c := keys[rows[i].BranchID].Cmp(keys[rows[j].BranchID]); c != 0 {
			return c > 0
		}
		return rows[i].BranchID < rows[j].BranchID
	})
	for i := range rows {
		if i > 0 && keys[rows[i].BranchID].Cmp(keys[rows[i-1].BranchID]) == 0 {
			rows[i].Rank = rows[i-1].Rank
		} else {
			rows[i].Rank = int64(i) + 1
		}
	}
}

// subtreeBranches is the subquery of the branches inside org.
func subtreeBranches(o models.Org) (string, []any) {
	switch {
	case o.Kind == models.KindBranch:
		return "(SELECT o2.id FROM orgs o2 WHERE o2.id = ?)", []any{o.ID}
	case o.ParentID == nil:
		return "", nil
	}
	cond, args := subtree("o2.path", o.Path)
	return "(SELECT o2.id FROM orgs o2 WHERE " + cond + " AND o2.kind = 'branch')", args
}

// BranchBoard is a page of the branches inside an org by average points per member (by
// "average", the default), total points ("total") or the share of members whose 四个一
// are complete ("completion"), with competition ranks. The cursor is the position after
// the last row. Returns EInvalid or ENotFound.
func (g *Aggregates) BranchBoard(ctx context.Context, a *Actor, orgID int64, period, by, cursor string, limit int) (BranchBoard, error) {
	per, err := g.period(period)
	if err != nil {
		return BranchBoard{}, err
	}
	if by == "" {
		by = "average"
	}
	if by != "average" && by != "total" && by != "completion" {
		return BranchBoard{}, models.InvalidField("by", "must be average, total or completion")
	}
	var after *branchCursor
	if cursor != "" {
		if after, err = parseBranchCursor(cursor, by); err != nil {
			return BranchBoard{}, err
		}
	}
	o, err := g.boardOrg(ctx, a, orgID)
	if err != nil {
		return BranchBoard{}, err
	}
	if o.Kind == models.KindGroup {
		return BranchBoard{}, models.InvalidField("org_id", "a group has no branches; ask for its branch")
	}
	sub, args := subtreeBranches(o)
	rows, err := g.branchRows(ctx, per, sub, args...)
	if err != nil {
		return BranchBoard{}, err
	}
	rankBranches(rows, by)
	start := 0
	if after != nil {
		// Keyset: the page goes on with the first row that sorts after the last one shown.
		start = sort.Search(len(rows), func(i int) bool {
			c := branchKey(rows[i], by).Cmp(after.key)
			return c < 0 || (c == 0 && rows[i].BranchID > after.id)
		})
	}
	end := min(start+limit, len(rows))
	board := BranchBoard{Items: rows[start:end], By: by}
	if end < len(rows) {
		last := rows[end-1]
		c := base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf("b:%s:%s:%d", by, branchKey(last, by).RatString(), last.BranchID)))
		board.NextCursor = &c
	}
	return board, nil
}

// branchCursor is where a branch leaderboard page ends: the last row's key and id.
type branchCursor struct {
	key *big.Rat
	id  int64
}

func parseBranchCursor(s, by string) (*branchCursor, error) {
	bad := models.InvalidField("cursor", "is not a cursor this server gave out for this ranking")
	raw, err := base64.RawURLEncoding.DecodeString(s)
	parts := strings.Split(string(raw), ":")
	if err != nil || len(parts) != 4 || parts[0] != "b" || parts[1] != by || len(parts[2]) > 40 {
		return nil, bad
	}
	key, ok := new(big.Rat).SetString(parts[2])
	id, err := strconv.ParseInt(parts[3], 10, 64)
	if !ok || err != nil {
		return nil, bad
	}
	return &branchCursor{key: key, id: id}, nil
}
