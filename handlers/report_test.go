package handlers_test

import (
	"bytes"
	"encoding/csv"
	"fmt"
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
