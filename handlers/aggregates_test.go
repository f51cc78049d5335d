package handlers_test

import (
	"fmt"
	"math"
	"net/url"
	"sort"
	"testing"
	"time"

	"partyledger/models"
)

// pointsModel is the test's own account of what was earned, kept beside the requests
// that earned it: the leaderboards and summaries are checked against it, not against
// the service's SQL.
type pointsModel struct {
	pts      map[models.Period]map[[2]int64]models.Points // (member, branch where earned)
	flags    map[models.Period]map[int64]models.FourOnes
	cats     map[models.Period]map[int64]map[string]models.Points
	branchOf map[int64]int64 // members now
	groupOf  map[int64]int64
	inactive map[int64]bool
}

func newPointsModel() *pointsModel {
	return &pointsModel{pts: map[models.Period]map[[2]int64]models.Points{}, flags: map[models.Period]map[int64]models.FourOnes{},
		cats: map[models.Period]map[int64]map[string]models.Points{}, branchOf: map[int64]int64{}, groupOf: map[int64]int64{}, inactive: map[int64]bool{}}
}

func (m *pointsModel) earn(per models.Period, member int64, category string, p models.Points) {
	if m.pts[per] == nil {
		m.pts[per], m.cats[per] = map[[2]int64]models.Points{}, map[int64]map[string]models.Points{}
	}
	m.pts[per][[2]int64{member, m.branchOf[member]}] += p
	if m.cats[per][member] == nil {
		m.cats[per][member] = map[string]models.Points{}
	}
	m.cats[per][member][category] += p
}

type modelRow struct {
	rank, member, branch int64
	points               models.Points
}

// board ranks the rows of the branches in scope (and of the group, if one is given):
// what members earned there, and zero for active members now there who earned nothing there.
func (m *pointsModel) board(per models.Period, branches map[int64]bool, group int64) []modelRow {
	var rows []modelRow
	seen := map[[2]int64]bool{}
	for k, p := range m.pts[per] {
		if branches[k[1]] && (group == 0 || m.groupOf[k[0]] == group) {
			rows = append(rows, modelRow{member: k[0], branch: k[1], points: p})
			seen[k] = true
		}
	}
	for mem, b := range m.branchOf {
		if branches[b] && (group == 0 || m.groupOf[mem] == group) && !seen[[2]int64{mem, b}] && !m.inactive[mem] {
			rows = append(rows, modelRow{member: mem, branch: b})
		}
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].points != rows[j].points {
			return rows[i].points > rows[j].points
		}
		return rows[i].member > rows[j].member
	})
	for i := range rows {
		rows[i].rank = int64(i) + 1
		if i > 0 && rows[i].points == rows[i-1].points {
			rows[i].rank = rows[i-1].rank
		}
	}
	return rows
}

type memberBoardResp struct {
	Items []struct {
		Rank     int64
		MemberID int64 `json:"member_id"`
		BranchID int64 `json:"branch_id"`
		Name     string
		Points   models.Points
	}
	NextCursor *string `json:"next_cursor"`
	Me         *struct {
		Rank   int64
		Points models.Points
	}
}

// walkBoard reads every page of a member leaderboard.
func (e *testEnv) walkBoard(token string, org int64, per models.Period, limit int) (rows []modelRow, me *modelRow) {
	e.t.Helper()
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 100 {
			e.t.Fatal("the pages never end")
		}
		q := url.Values{"org_id": {fmt.Sprint(org)}, "period": {string(per)}, "limit": {fmt.Sprint(limit)}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var b memberBoardResp
		e.get("/api/v1/leaderboards/members?"+q.Encode(), token).want(200).decode(&b)
		if len(b.Items) > limit {
			e.t.Fatalf("a page of %d rows for limit %d", len(b.Items), limit)
		}
		for _, it := range b.Items {
			rows = append(rows, modelRow{rank: it.Rank, member: it.MemberID, branch: it.BranchID, points: it.Points})
		}
		if b.Me != nil {
			me = &modelRow{rank: b.Me.Rank, points: b.Me.Points}
		}
		if b.NextCursor == nil {
			return rows, me
		}
		cursor = *b.NextCursor
	}
}

func TestLeaderboardsAndSummariesAgreeWithAnIndependentCount(t *testing.T) {
	e := newEnv(t, map[string]string{"LEDGER_STAR_THRESHOLDS": "5,10,20,40"})
	tr := e.seedTree()
	m := newPointsModel()
	member := func(no, name string, branch int64, group *int64) int64 {
		var mem models.Member
		e.post("/api/v1/members", e.adminT, map[string]any{"member_no": no, "name": name, "branch_id": branch, "group_id": group}).want(201).decode(&mem)
		return mem.ID
	}
	dave := member("D001", "赵大伟", tr.b1, nil)
	frank := member("F001", "孙芳", tr.b1, &tr.g1)
	erin := member("E001", "周爱玲", tr.b2, nil)
	gina := member("G001", "吴静", tr.b3, nil)
	hank := member("H001", "郑浩", tr.b2, nil)    // leaves after earning this month
	ivy := member("I001", "冯怡", tr.b1, &tr.g1)  // leaves having earned nothing
	kate := member("K001", "钱凯", tr.b1, &tr.g1) // earns in the group, then moves to b2
	for id, b := range map[int64]int64{tr.alice: tr.b1, tr.sec: tr.b1, dave: tr.b1, frank: tr.b1, tr.bob: tr.b2, erin: tr.b2, tr.carol: tr.b3, tr.lead: tr.b3, gina: tr.b3, hank: tr.b2, ivy: tr.b1, kate: tr.b1} {
		m.branchOf[id] = b
	}
	m.groupOf[tr.alice], m.groupOf[frank], m.groupOf[kate] = tr.g1, tr.g1, tr.g1

	now := time.Now().In(e.cfg.Location)
	first := time.Date(now.Year(), now.Month(), 1, 12, 0, 0, 0, e.cfg.Location)
	day := func(monthsBack int) string { return first.AddDate(0, -monthsBack, 0).Format("2006-01-02") }
	P, Q, R := models.Period(day(0)[:7]), models.Period(day(1)[:7]), models.Period(day(2)[:7])

	manual := func(who int64, pts float64, back int) {
		t.Helper()
		code, p := "adjust.bonus", pts
		if pts < 0 {
			code, p = "adjust.deduct", -pts
		}
		e.post("/api/v1/entries", e.adminT, map[string]any{"member_id": who, "rule_code": code, "points": p, "reason": "测试", "occurred_on": day(back)}).want(201)
		m.earn(models.Period(day(back)[:7]), who, "adjustment", models.Points(pts*10))
	}
	fourOnes := func(token string, who int64, rule string) {
		t.Helper()
		var c models.Claim
		e.claim(token, "", map[string]any{"rule_code": rule, "occurred_on": day(0), "quantity": 1, "evidence_ids": []int64{e.uploadID(token)}}).want(201).decode(&c)
		e.post(fmt.Sprintf("/api/v1/claims/%d/approve", c.ID), e.adminT, nil).want(200)
		m.earn(P, who, "four_ones", 20)
		if m.flags[P] == nil {
			m.flags[P] = map[int64]models.FourOnes{}
		}
		m.flags[P][who] |= models.FourOnesBit(rule)
	}
	for _, r := range models.FourOnesRules {
		fourOnes(tr.aliceT, tr.alice, r)
	}
	fourOnes(e.tokenFor(dave), dave, models.FourOnesRules[2])
	manual(tr.alice, 5, 0)  // 13
	manual(dave, 9, 0)      // 11
	manual(tr.sec, 11, 0)   // 11, a tie with dave
	manual(frank, 11, 0)    // 11, three of them
	manual(tr.bob, 4, 0)    // in b2
	manual(erin, 4, 0)      // 4, a tie across branches with bob's b2 row
	manual(tr.carol, -1, 0) // below everyone who earned nothing
	manual(gina, -0.1, 0)   // lower still: pages that end below zero go on below zero
	manual(tr.alice, 1, 2)  // two months back
	manual(hank, 3, 0)
	// Members who leave keep the points they earned, and stop ranking at zero.
	for _, who := range []int64{hank, ivy} {
		e.json("PATCH", fmt.Sprintf("/api/v1/members/%d", who), e.adminT, map[string]any{"status": "inactive"}).want(200)
		m.inactive[who] = true
	}
	// Bob moves to b1 in the middle of the month: what he earns now counts there.
	e.json("PATCH", fmt.Sprintf("/api/v1/members/%d", tr.bob), e.adminT, map[string]any{"branch_id": tr.b1}).want(200)
	m.branchOf[tr.bob] = tr.b1
	manual(tr.bob, 2.5, 0)
	bobT := e.tokenFor(tr.bob)
	// Kate earns in g1, then moves to b2, which leaves her in no group: her b1 row stays on
	// b1's board, and leaves g1's, whose members are those in it now.
	manual(kate, 7, 0)
	e.json("PATCH", fmt.Sprintf("/api/v1/members/%d", kate), e.adminT, map[string]any{"branch_id": tr.b2}).want(200)
	m.branchOf[kate] = tr.b2
	delete(m.groupOf, kate)
	// She earns more in b2 and moves on to b3, where she earns nothing: on a board that
	// holds both her rows and not her branch's, her own place is the better row.
	manual(kate, 8, 0)
	e.json("PATCH", fmt.Sprintf("/api/v1/members/%d", kate), e.adminT, map[string]any{"branch_id": tr.b3}).want(200)
	m.branchOf[kate] = tr.b3
	kateT := e.tokenFor(kate)

	scopes := []struct {
		name     string
		org      int64
		branches []int64
		group    int64
	}{
		{"committee", e.rootID, []int64{tr.b1, tr.b2, tr.b3}, 0},
		{"general branch", tr.gb1, []int64{tr.b1, tr.b2}, 0},
		{"branch 1", tr.b1, []int64{tr.b1}, 0},
		{"branch 2", tr.b2, []int64{tr.b2}, 0},
		{"branch 3", tr.b3, []int64{tr.b3}, 0},
		{"group", tr.g1, []int64{tr.b1}, tr.g1},
	}
	for _, per := range []models.Period{P, Q, R} {
		for _, sc := range scopes {
			set := map[int64]bool{}
			for _, b := range sc.branches {
				set[b] = true
			}
			want := m.board(per, set, sc.group)
			// Every page size up to the whole board, so that every row starts a page once:
			// a page's ranks follow from the places of its first row.
			for limit := 1; limit <= len(want)+1; limit++ {
				got, _ := e.walkBoard(tr.leadT, sc.org, per, limit)
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("%s %s, pages of %d:\n got %v\nwant %v", sc.name, per, limit, got, want)
				}
			}
			// Each member's own row: their row in the branch they are in now.
			for who, token := range map[int64]string{tr.alice: tr.aliceT, tr.bob: bobT, tr.lead: tr.leadT, tr.carol: tr.carT} {
				var wantMe *modelRow
				for _, r := range want {
					if r.member == who && r.branch == m.branchOf[who] {
						wantMe = &modelRow{rank: r.rank, points: r.points}
					}
				}
				var b memberBoardResp
				res := e.get(fmt.Sprintf("/api/v1/leaderboards/members?org_id=%d&period=%s", sc.org, per), token)
				if wantMe == nil && res.Status == 404 {
					continue // not theirs to see
				}
				if res.Status != 200 {
					t.Fatalf("%s %s: member %d: status %d", sc.name, per, who, res.Status)
				}
				res.decode(&b)
				var gotMe *modelRow
				if b.Me != nil {
					gotMe = &modelRow{rank: b.Me.Rank, points: b.Me.Points}
				}
				if fmt.Sprint(gotMe) != fmt.Sprint(wantMe) {
					t.Fatalf("%s %s: member %d's own row is %v, want %v", sc.name, per, who, gotMe, wantMe)
				}
			}
		}
	}
	// Kate's rows in b1 and b2 are both on the committee's board, and her branch now, b3,
	// holds none: her own place is the b2 row. gb1's board is no longer hers to see.
	var kateMe *modelRow
	for _, r := range m.board(P, map[int64]bool{tr.b1: true, tr.b2: true, tr.b3: true}, 0) {
		if r.member == kate && r.branch == tr.b2 {
			kateMe = &modelRow{rank: r.rank, points: r.points}
		}
	}
	var kateBoard memberBoardResp
	e.get(fmt.Sprintf("/api/v1/leaderboards/members?org_id=%d&period=%s", e.rootID, P), kateT).want(200).decode(&kateBoard)
	if kateMe == nil || kateMe.points != 80 || kateBoard.Me == nil || kateBoard.Me.Rank != kateMe.rank || kateBoard.Me.Points != kateMe.points {
		t.Fatalf("kate's own row is %+v, want her b2 row %+v", kateBoard.Me, kateMe)
	}
	e.get(fmt.Sprintf("/api/v1/leaderboards/members?org_id=%d&period=%s", tr.gb1, P), kateT).want(404)
	// Carol earned this month only in b3. Moved to b1 she is inside gb1 with no row there:
	// on gb1's board she ranks at zero, not with her b3 row. Then she moves back.
	e.json("PATCH", fmt.Sprintf("/api/v1/members/%d", tr.carol), e.adminT, map[string]any{"branch_id": tr.b1}).want(200)
	var above int64
	for _, r := range m.board(P, map[int64]bool{tr.b1: true, tr.b2: true}, 0) {
		if r.points > 0 {
			above++
		}
	}
	var carolBoard memberBoardResp
	e.get(fmt.Sprintf("/api/v1/leaderboards/members?org_id=%d&period=%s", tr.gb1, P), tr.carT).want(200).decode(&carolBoard)
	if carolBoard.Me == nil || carolBoard.Me.Points != 0 || carolBoard.Me.Rank != above+1 {
		t.Fatalf("carol, moved into gb1 with no row there: %+v, want rank %d at zero", carolBoard.Me, above+1)
	}
	e.json("PATCH", fmt.Sprintf("/api/v1/members/%d", tr.carol), e.adminT, map[string]any{"branch_id": tr.b3}).want(200)
	// Staff placed at the committee itself (the bootstrap admin) are in no branch: having
	// earned nothing, they have no place on its board.
	var adminBoard memberBoardResp
	e.get(fmt.Sprintf("/api/v1/leaderboards/members?org_id=%d&period=%s", e.rootID, P), e.adminT).want(200).decode(&adminBoard)
	if adminBoard.Me != nil {
		t.Fatalf("the admin has a place on the committee's board: %+v", *adminBoard.Me)
	}
	// An empty month: everyone ties at zero.
	if got, _ := e.walkBoard(tr.leadT, e.rootID, Q, 100); len(got) != len(m.branchOf)-len(m.inactive) || got[0].rank != 1 || got[len(got)-1].rank != 1 {
		t.Fatalf("empty month: %v", got)
	}

	// Who may see which board: members inside the org, staff over it.
	visible := []struct {
		token string
		org   int64
		want  int
	}{
		{bobT, tr.b1, 200}, {bobT, tr.gb1, 200}, {bobT, e.rootID, 200}, {bobT, tr.b2, 404}, {bobT, tr.b3, 404}, {bobT, tr.g1, 404},
		{tr.carT, tr.b1, 404}, {tr.carT, tr.gb1, 404}, {tr.carT, tr.b3, 200},
		{tr.aliceT, tr.g1, 200}, {e.tokenFor(dave), tr.g1, 404}, {tr.secT, tr.g1, 200}, {tr.secT, tr.b2, 404},
		{tr.leadT, tr.b2, 200}, {tr.leadT, 999999, 404},
	}
	for _, v := range visible {
		e.get(fmt.Sprintf("/api/v1/leaderboards/members?org_id=%d&period=%s", v.org, P), v.token).want(v.want)
		e.get(fmt.Sprintf("/api/v1/leaderboards/branches?org_id=%d&period=%s", v.org, P), v.token).want(map[bool]int{true: 422, false: v.want}[v.org == tr.g1 && v.want == 200])
	}
	for _, bad := range []string{"period=2026-13", "period=26-01", "org_id=x", "limit=0", "cursor=bm90IGEgY3Vyc29y", "org_id=-1"} {
		e.get("/api/v1/leaderboards/members?"+bad, tr.aliceT).want(422)
	}
	e.get("/api/v1/leaderboards/branches?by=size", tr.aliceT).want(422)
	e.get("/api/v1/leaderboards/members", tr.aliceT).want(200) // the caller's branch, this month

	// Branch leaderboards, by each key, against figures computed here.
	type bfig struct {
		id                              int64
		members, complete, participants int64
		total                           models.Points
	}
	figs := map[int64]*bfig{tr.b1: {id: tr.b1}, tr.b2: {id: tr.b2}, tr.b3: {id: tr.b3}}
	for mem, b := range m.branchOf {
		if !m.inactive[mem] {
			figs[b].members++
		}
	}
	for k, p := range m.pts[P] {
		f := figs[k[1]]
		f.total += p
		if m.branchOf[k[0]] != k[1] || m.inactive[k[0]] {
			f.members++ // earned here, has left since
		}
		if p > 0 {
			f.participants++
		}
		if m.flags[P][k[0]].Complete() {
			f.complete++
		}
	}
	type branchRow struct {
		Rank              int64
		BranchID          int64 `json:"branch_id"`
		Members           int64
		Total             models.Points
		Average           models.Points
		CompletionRate    float64 `json:"completion_rate"`
		ParticipationRate float64 `json:"participation_rate"`
	}
	for _, by := range []string{"average", "total", "completion"} {
		key := func(f *bfig) float64 {
			switch by {
			case "total":
				return float64(f.total)
			case "completion":
				return float64(f.complete) / float64(f.members)
			}
			return float64(f.total) / float64(f.members)
		}
		order := []*bfig{figs[tr.b1], figs[tr.b2], figs[tr.b3]}
		sort.SliceStable(order, func(i, j int) bool {
			if key(order[i]) != key(order[j]) {
				return key(order[i]) > key(order[j])
			}
			return order[i].id < order[j].id
		})
		var got []branchRow
		cursor := ""
		for {
			var page struct {
				Items      []branchRow
				NextCursor *string `json:"next_cursor"`
			}
			e.get(fmt.Sprintf("/api/v1/leaderboards/branches?org_id=%d&period=%s&by=%s&limit=1&cursor=%s", e.rootID, P, by, cursor), tr.leadT).want(200).decode(&page)
			got = append(got, page.Items...)
			if page.NextCursor == nil {
				break
			}
			cursor = *page.NextCursor
		}
		if len(got) != 3 {
			t.Fatalf("by %s: %d branches", by, len(got))
		}
		for i, f := range order {
			g := got[i]
			rank := int64(i) + 1
			if i > 0 && key(order[i]) == key(order[i-1]) {
				rank = got[i-1].Rank
			}
			avg := float64(f.total) / float64(f.members) / 10
			if g.BranchID != f.id || g.Rank != rank || g.Members != f.members || g.Total != f.total ||
				models.Points(math.Round(float64(f.total)/float64(f.members))) != g.Average ||
				fmt.Sprintf("%.3f", float64(f.complete)/float64(f.members)) != fmt.Sprintf("%.3f", g.CompletionRate) ||
				fmt.Sprintf("%.3f", float64(f.participants)/float64(f.members)) != fmt.Sprintf("%.3f", g.ParticipationRate) {
				t.Fatalf("by %s, place %d: got %+v, want %+v (rank %d, average %.2f)", by, i+1, g, *f, rank, avg)
			}
		}
	}

	// A branch with no members yet ranks with zeros, not a division by zero.
	var empty models.Org
	e.post("/api/v1/orgs", e.adminT, map[string]any{"parent_id": e.rootID, "kind": "branch", "name": "新建党支部"}).want(201).decode(&empty)
	for _, by := range []string{"average", "total", "completion"} {
		var page struct{ Items []branchRow }
		e.get(fmt.Sprintf("/api/v1/leaderboards/branches?org_id=%d&period=%s&by=%s", e.rootID, P, by), tr.leadT).want(200).decode(&page)
		var row *branchRow
		for i := range page.Items {
			if page.Items[i].BranchID == empty.ID {
				row = &page.Items[i]
			}
		}
		if len(page.Items) != 4 || row == nil || row.Members != 0 || row.Total != 0 || row.Average != 0 || row.CompletionRate != 0 || row.ParticipationRate != 0 {
			t.Fatalf("by %s, with an empty branch: %+v", by, page.Items)
		}
	}
	var emptySum branchRow
	e.get(fmt.Sprintf("/api/v1/branches/%d/summary?period=%s", empty.ID, P), tr.leadT).want(200).decode(&emptySum)
	if emptySum.BranchID != empty.ID || emptySum.Members != 0 || emptySum.Average != 0 {
		t.Fatalf("the empty branch's month: %+v", emptySum)
	}

	// A member's month and year.
	var sum struct {
		Total           models.Points
		ByCategory      map[string]models.Points `json:"by_category"`
		FourOnes        map[string]bool          `json:"four_ones"`
		Complete        bool
		BranchID        int64  `json:"branch_id"`
		RankInBranch    int64  `json:"rank_in_branch"`
		RankInCommittee *int64 `json:"rank_in_committee"`
	}
	rankOf := func(rows []modelRow, who, branch int64) int64 {
		for _, r := range rows {
			if r.member == who && r.branch == branch {
				return r.rank
			}
		}
		return 0
	}
	all := map[int64]bool{tr.b1: true, tr.b2: true, tr.b3: true}
	for who, token := range map[int64]string{tr.alice: tr.aliceT, tr.bob: bobT, dave: tr.secT, tr.carol: tr.leadT, gina: tr.leadT, frank: e.adminT, erin: e.adminT} {
		e.get(fmt.Sprintf("/api/v1/members/%d/summary?period=%s", who, P), token).want(200).decode(&sum)
		var total models.Points
		for _, p := range m.cats[P][who] {
			total += p
		}
		b := m.branchOf[who]
		if sum.Total != total || sum.BranchID != b || sum.Complete != m.flags[P][who].Complete() ||
			sum.RankInBranch != rankOf(m.board(P, map[int64]bool{b: true}, 0), who, b) ||
			sum.RankInCommittee == nil || *sum.RankInCommittee != rankOf(m.board(P, all, 0), who, b) {
			t.Fatalf("member %d's month: %+v (want total %s in branch %d)", who, sum, total, b)
		}
		for _, c := range []string{"four_ones", "adjustment", "volunteer"} {
			if sum.ByCategory[c] != m.cats[P][who][c] {
				t.Fatalf("member %d: %s is %s, want %s", who, c, sum.ByCategory[c], m.cats[P][who][c])
			}
		}
		for i, r := range models.FourOnesRules {
			if sum.FourOnes[r[len("four_ones."):]] != (m.flags[P][who]&(1<<i) != 0) {
				t.Fatalf("member %d: flags %v", who, sum.FourOnes)
			}
		}
	}
	// A member who earned this month only in a branch they have since left is ranked
	// where they earned it.
	e.json("PATCH", fmt.Sprintf("/api/v1/members/%d", erin), e.adminT, map[string]any{"branch_id": tr.b3}).want(200)
	e.get(fmt.Sprintf("/api/v1/members/%d/summary?period=%s", erin, P), e.tokenFor(erin)).want(200).decode(&sum)
	if want, wantC := rankOf(m.board(P, map[int64]bool{tr.b2: true}, 0), erin, tr.b2), rankOf(m.board(P, all, 0), erin, tr.b2); sum.BranchID != tr.b2 ||
		sum.RankInBranch != want || sum.RankInCommittee == nil || *sum.RankInCommittee != wantC || sum.Total != 40 {
		t.Fatalf("erin, moved away: %+v (want rank %d in branch %d, %d in the committee)", sum, want, tr.b2, wantC)
	}
	var year struct {
		Year   int
		Months []struct {
			Period   models.Period
			Total    models.Points
			Complete bool
		}
		Total models.Points
		Stars int
	}
	e.get(fmt.Sprintf("/api/v1/members/%d/summary?year=%s", tr.alice, P[:4]), tr.aliceT).want(200).decode(&year)
	var wantYear models.Points
	for _, per := range []models.Period{P, Q, R} {
		if per[:4] == P[:4] {
			wantYear += m.pts[per][[2]int64{tr.alice, tr.b1}]
		}
	}
	if len(year.Months) != 12 || year.Total != wantYear || year.Stars != map[bool]int{true: 4, false: 3}[wantYear >= 200] ||
		year.Months[int(P[5]-'0')*10+int(P[6]-'0')-1].Total != 130 || !year.Months[int(P[5]-'0')*10+int(P[6]-'0')-1].Complete {
		t.Fatalf("alice's year: %+v (want %s)", year, wantYear)
	}
	// Who may read a summary: the member, and staff over their branch.
	e.get(fmt.Sprintf("/api/v1/members/%d/summary", tr.alice), tr.carT).want(404)
	e.get(fmt.Sprintf("/api/v1/members/%d/summary", tr.alice), e.tokenFor(dave)).want(404)
	e.get(fmt.Sprintf("/api/v1/members/%d/summary", tr.carol), tr.secT).want(404)
	for _, y := range []string{"26", "1999", "2101", "3000", "02026", "2026.0", "+2026"} {
		e.get(fmt.Sprintf("/api/v1/members/%d/summary?year=%s", tr.alice, y), tr.aliceT).want(422)
	}
	e.get(fmt.Sprintf("/api/v1/members/%d/summary?year=2026&period=2026-01", tr.alice), tr.aliceT).want(422)
	for _, y := range []int{2000, 2100} { // the ledger's first and last years: nothing earned in them
		e.get(fmt.Sprintf("/api/v1/members/%d/summary?year=%d", tr.alice, y), tr.aliceT).want(200).decode(&year)
		if year.Year != y || len(year.Months) != 12 || year.Total != 0 {
			t.Fatalf("alice's year %d: %+v", y, year)
		}
	}

	// A branch's month, and its publication (公示) once the month is closed.
	type branchSum struct {
		branchRow
		Siblings  int
		Publicity struct {
			Closed, Open bool
		}
		Results []struct {
			MemberID int64 `json:"member_id"`
			Total    models.Points
			Complete bool
		}
	}
	var bs branchSum
	e.get(fmt.Sprintf("/api/v1/branches/%d/summary?period=%s", tr.b1, P), e.tokenFor(dave)).want(200).decode(&bs)
	if bs.Members != figs[tr.b1].members || bs.Total != figs[tr.b1].total || bs.Siblings != 2 || bs.Results != nil || bs.Publicity.Closed {
		t.Fatalf("b1 before publication, to a member: %+v", bs)
	}
	e.get(fmt.Sprintf("/api/v1/branches/%d/summary?period=%s", tr.b1, P), tr.secT).want(200).decode(&bs)
	if len(bs.Results) != int(figs[tr.b1].members) {
		t.Fatalf("b1 to its secretary: %d results", len(bs.Results))
	}
	e.get(fmt.Sprintf("/api/v1/branches/%d/summary?period=%s", tr.b1, P), tr.carT).want(404)
	e.get(fmt.Sprintf("/api/v1/branches/%d/summary?period=%s", tr.gb1, P), tr.leadT).want(404) // not a branch
	e.post("/api/v1/periods/"+string(P)+"/close", e.adminT, map[string]any{"org_id": tr.gb1}).want(200)
	e.get(fmt.Sprintf("/api/v1/branches/%d/summary?period=%s", tr.b1, P), e.tokenFor(dave)).want(200).decode(&bs)
	if !bs.Publicity.Closed || !bs.Publicity.Open || len(bs.Results) != int(figs[tr.b1].members) {
		t.Fatalf("b1 published, to a member: %+v", bs)
	}
	for _, r := range bs.Results {
		if r.MemberID == tr.alice && (r.Total != 130 || !r.Complete) {
			t.Fatalf("alice's published result: %+v", r)
		}
	}
	// Closed above too: the branch is published until the later of its two windows,
	// whichever of them has ended. When both have ended, its members see no results, and
	// its secretary still does.
	e.post("/api/v1/periods/"+string(P)+"/close", e.adminT, map[string]any{"org_id": e.rootID}).want(200)
	past, later := time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	window := func(org int64, until time.Time) {
		t.Helper()
		if err := e.db.W.Model(&models.ClosedPeriod{}).Where("period = ? AND org_id = ?", P, org).Update("public_until", until).Error; err != nil {
			t.Fatal(err)
		}
	}
	for _, ended := range []int64{e.rootID, tr.gb1} {
		window(e.rootID, later)
		window(tr.gb1, later)
		window(ended, past)
		e.get(fmt.Sprintf("/api/v1/branches/%d/summary?period=%s", tr.b1, P), e.tokenFor(dave)).want(200).decode(&bs)
		if !bs.Publicity.Closed || !bs.Publicity.Open || len(bs.Results) != int(figs[tr.b1].members) {
			t.Fatalf("b1 with the window of org %d over: %+v", ended, bs)
		}
	}
	window(e.rootID, past)
	window(tr.gb1, past)
	bs = branchSum{}
	e.get(fmt.Sprintf("/api/v1/branches/%d/summary?period=%s", tr.b1, P), e.tokenFor(dave)).want(200).decode(&bs)
	if !bs.Publicity.Closed || bs.Publicity.Open || bs.Results != nil {
		t.Fatalf("b1 after its publicity, to a member: %+v", bs)
	}
	e.get(fmt.Sprintf("/api/v1/branches/%d/summary?period=%s", tr.b1, P), tr.secT).want(200).decode(&bs)
	if len(bs.Results) != int(figs[tr.b1].members) {
		t.Fatalf("b1 after its publicity, to its secretary: %d results", len(bs.Results))
	}
}
