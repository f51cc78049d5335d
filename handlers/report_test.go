package handlers_test

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"
)

func TestMonthlyReport(t *testing.T) {
	e := newEnv(t, map[string]string{"LEDGER_REPORT_MAX_ROWS": "6"})
	tr := e.seedTree()
	// A name a spreadsheet would run as a formula.
	e.json("PATCH", fmt.Sprintf("/api/v1/members/%d", tr.bob), e.adminT, map[string]any{"name": "=HYPERLINK(\"x\")"}).want(200)
	for who, pts := range map[int64]float64{tr.alice: 3, tr.bob: 3, tr.carol: 1.5} {
		e.post("/api/v1/entries", e.adminT, map[string]any{"member_id": who, "rule_code": "adjust.bonus", "points": pts, "reason": "r", "occurred_on": today(e)}).want(201)
	}
	period := today(e)[:7]
	url := func(format string) string {
		return fmt.Sprintf("/api/v1/reports/monthly?org_id=%d&period=%s&format=%s", e.rootID, period, format)
	}

	res := e.get(url("csv"), tr.leadT).want(200)
	if !strings.HasPrefix(res.Header.Get("Content-Type"), "text/csv") || !strings.Contains(res.Header.Get("Content-Disposition"), ".csv") {
		t.Fatalf("headers: %v", res.Header)
	}
	if !bytes.HasPrefix(res.Body, []byte("\ufeff")) {
		t.Fatal("the csv has no byte order mark")
	}
	recs, err := csv.NewReader(bytes.NewReader(res.Body[3:])).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	// Five members in branches: alice and bob tie at 3, carol 1.5, sec and lead 0.
	if len(recs) != 6 || recs[0][0] != "排名" || recs[1][4] != "3" || recs[2][4] != "3" || recs[1][0] != "1" || recs[2][0] != "1" ||
		recs[3][2] != "张伟" || recs[3][4] != "1.5" || recs[3][0] != "3" || recs[4][0] != "4" || recs[5][0] != "4" {
		t.Fatalf("csv members: %q", recs)
	}
	var sawBob bool
	for _, r := range recs {
		if strings.Contains(r[2], "HYPERLINK") {
			sawBob = true
			if !strings.HasPrefix(r[2], "'=") {
				t.Fatalf("a formula-looking name is not neutralised: %q", r[2])
			}
		}
	}
	if !sawBob {
		t.Fatal("bob is missing")
	}
	res = e.get(url("csv")+"&sheet=branches", tr.leadT).want(200)
	branches, err := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(res.Body, []byte("\ufeff")))).ReadAll()
	if err != nil || len(branches) != 4 || branches[0][1] != "支部" {
		t.Fatalf("csv branches: %q %v", branches, err)
	}

	res = e.get(url("xlsx"), tr.leadT).want(200)
	f, err := excelize.OpenReader(bytes.NewReader(res.Body))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got := f.GetSheetList(); len(got) != 2 || got[0] != "党员积分" || got[1] != "支部汇总" {
		t.Fatalf("sheets: %v", got)
	}
	rows, err := f.GetRows("党员积分")
	if err != nil || len(rows) != 6 || rows[0][2] != "姓名" || rows[1][4] != "3" || rows[3][4] != "1.5" || rows[3][0] != "3" {
		t.Fatalf("xlsx members: %q %v", rows, err)
	}
	if panes, err := f.GetPanes("党员积分"); err != nil || !panes.Freeze || panes.YSplit != 1 {
		t.Fatalf("the header row is not frozen: %+v %v", panes, err)
	}
	if w, err := f.GetColWidth("党员积分", "D"); err != nil || w < 15 {
		t.Fatalf("branch column width %v %v", w, err)
	}
	brows, err := f.GetRows("支部汇总")
	if err != nil || len(brows) != 4 {
		t.Fatalf("xlsx branches: %q %v", brows, err)
	}

	// HEAD answers the headers and writes no report (it used to write one into a closed
	// pipe and log an error).
	head := httptest.NewRequest("HEAD", url("csv"), nil)
	head.Header.Set("Authorization", "Bearer "+tr.leadT)
	if resp, err := e.f.Test(head, -1); err != nil || resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Disposition"), ".csv") {
		t.Fatalf("HEAD: %v %v", resp, err)
	}
	if len(e.reports) != 0 || strings.Contains(e.logs.String(), `"level":"ERROR"`) {
		t.Fatalf("HEAD left %d report slots taken, or logged an error:\n%s", len(e.reports), e.logs.String())
	}

	// Who may have it, and what is refused.
	e.get(url("xlsx"), tr.secT).want(404)
	e.get(url("xlsx"), tr.aliceT).want(404)
	e.get(url("pdf"), tr.leadT).want(422)
	e.get(url("xlsx")+"&sheet=branches", tr.leadT).want(422)
	e.get(url("csv")+"&sheet=other", tr.leadT).want(422)
	e.get(fmt.Sprintf("/api/v1/reports/monthly?period=%s", period), tr.leadT).want(422)
	e.get(fmt.Sprintf("/api/v1/reports/monthly?org_id=%d&period=2026-00", e.rootID), tr.leadT).want(422)
	// Over the row cap of 6: the committee has seven members in branches once two more join.
	var x1, x2 struct{ ID int64 }
	e.post("/api/v1/members", e.adminT, map[string]any{"member_no": "X001", "name": "新党员", "branch_id": tr.b2}).want(201).decode(&x1)
	e.post("/api/v1/members", e.adminT, map[string]any{"member_no": "X002", "name": "新党员二", "branch_id": tr.b2}).want(201).decode(&x2)
	if r := e.get(url("csv"), tr.leadT).want(422); !strings.Contains(string(r.Body), "limit of 6") {
		t.Fatalf("cap: %s", r.Body)
	}
	e.get(fmt.Sprintf("/api/v1/reports/monthly?org_id=%d&period=%s&format=csv", tr.b1, period), tr.leadT).want(200)
	// Over the cap by the month's rows alone, when all seven earned points.
	for _, id := range []int64{tr.sec, tr.lead, x1.ID, x2.ID} {
		e.post("/api/v1/entries", e.adminT, map[string]any{"member_id": id, "rule_code": "adjust.bonus", "points": 1, "reason": "r", "occurred_on": today(e)}).want(201)
	}
	if r := e.get(url("csv"), tr.leadT).want(422); !strings.Contains(string(r.Body), "at least 7 rows") {
		t.Fatalf("cap by rows: %s", r.Body)
	}

	// Two reports at once at most: while both slots are taken the next is asked to retry,
	// and a report that is written frees its slot (also one refused for its row count).
	e.reports <- struct{}{}
	e.reports <- struct{}{}
	if r := e.get(url("csv"), tr.leadT).want(429); r.Header.Get("Retry-After") == "" {
		t.Fatal("no Retry-After on a refused report")
	}
	<-e.reports
	e.get(url("csv"), tr.leadT).want(422)
	e.get(fmt.Sprintf("/api/v1/reports/monthly?org_id=%d&period=%s&format=xlsx", tr.b1, period), tr.leadT).want(200)
	if n := len(e.reports); n != 1 {
		t.Fatalf("%d report slots taken after the reports were written, want the 1 the test holds", n)
	}
}

// TestMonthlyReportOrder: the member sheet merges members with a row of the month and
// members who earned nothing into one ranking, in the member leaderboard's order: points
// down, then the newest member first, whether a member's zero is a row or no row, and a
// member below zero after all of them. Names a spreadsheet would run are neutralised
// whichever formula sign they start with.
func TestMonthlyReportOrder(t *testing.T) {
	e := newEnv(t, nil)
	tr := e.seedTree()
	var x [3]int64
	for i, name := range []string{"+SUM(1)", "-1+2", "@cmd"} {
		var m struct{ ID int64 }
		e.post("/api/v1/members", e.adminT, map[string]any{"member_no": fmt.Sprintf("X00%d", i+1), "name": name, "branch_id": tr.b2}).want(201).decode(&m)
		x[i] = m.ID
	}
	entry := func(who int64, code string, pts float64) {
		e.post("/api/v1/entries", e.adminT, map[string]any{"member_id": who, "rule_code": code, "points": pts, "reason": "r", "occurred_on": today(e)}).want(201)
	}
	// alice 3 and carol 1.5; lead and X002 back at zero with a row of the month; bob,
	// X001 and X003 at zero with none; sec below zero.
	entry(tr.alice, "adjust.bonus", 3)
	entry(tr.carol, "adjust.bonus", 1.5)
	entry(tr.lead, "adjust.bonus", 1)
	entry(tr.lead, "adjust.deduct", 1)
	entry(x[1], "adjust.bonus", 2)
	entry(x[1], "adjust.deduct", 2)
	entry(tr.sec, "adjust.deduct", 1)
	period := today(e)[:7]

	// No format: an xlsx workbook. A csv file is named for its sheet.
	base := fmt.Sprintf("/api/v1/reports/monthly?org_id=%d&period=%s", e.rootID, period)
	if ct := e.get(base, tr.leadT).want(200).Header.Get("Content-Type"); !strings.Contains(ct, "spreadsheetml") {
		t.Fatalf("a report without a format is %q", ct)
	}
	res := e.get(base+"&format=csv", tr.leadT).want(200)
	if cd, want := res.Header.Get("Content-Disposition"), fmt.Sprintf("report-%d-%s-members.csv", e.rootID, period); !strings.Contains(cd, want) {
		t.Fatalf("Content-Disposition %q, want the name %s", cd, want)
	}
	recs, err := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(res.Body, []byte("\ufeff")))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := [][2]string{{"1", "A001"}, {"2", "C001"}, {"3", "X003"}, {"3", "X002"}, {"3", "X001"}, {"3", "L001"}, {"3", "B001"}, {"8", "S001"}}
	var got [][2]string
	for _, r := range recs[1:] {
		got = append(got, [2]string{r[0], r[1]})
		if strings.HasPrefix(r[1], "X") && !strings.HasPrefix(r[2], "'") {
			t.Fatalf("the name %q is not neutralised", r[2])
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("ranks and member numbers %v, want %v", got, want)
	}
	var board struct {
		Items []struct {
			Rank     int64
			MemberID int64 `json:"member_id"`
		}
	}
	e.get(fmt.Sprintf("/api/v1/leaderboards/members?org_id=%d&period=%s", e.rootID, period), tr.leadT).want(200).decode(&board)
	wantIDs := []int64{tr.alice, tr.carol, x[2], x[1], x[0], tr.lead, tr.bob, tr.sec}
	if len(board.Items) != len(wantIDs) {
		t.Fatalf("the leaderboard has %d rows, want %d", len(board.Items), len(wantIDs))
	}
	for i, it := range board.Items {
		if it.MemberID != wantIDs[i] || fmt.Sprint(it.Rank) != want[i][0] {
			t.Fatalf("leaderboard row %d is member %d ranked %d; the report has %v", i, it.MemberID, it.Rank, want[i])
		}
	}

	// A group's report has the member sheet only: a group has no branches to rank.
	res = e.get(fmt.Sprintf("/api/v1/reports/monthly?org_id=%d&period=%s&format=xlsx", tr.g1, period), tr.leadT).want(200)
	f, err := excelize.OpenReader(bytes.NewReader(res.Body))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got := f.GetSheetList(); len(got) != 1 || got[0] != "党员积分" {
		t.Fatalf("a group's sheets: %v", got)
	}
	if rows, err := f.GetRows("党员积分"); err != nil || len(rows) != 2 || rows[1][1] != "A001" {
		t.Fatalf("a group's members: %q %v", rows, err)
	}
}
