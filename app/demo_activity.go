package app

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"time"

	"gorm.io/gorm"

	"partyledger/models"
)

// demoEvent is one thing a demo member did, before it becomes a claim, check-in or entry.
type demoEvent struct {
	day      models.Date
	rule     string
	qty      models.Points
	activity int // index into the activities, for check-ins
	post     *models.PostAssignment
	manual   models.Points // bonus (>0) or deduction (<0)
	status   string        // for claims
}

// seedDemoActivity gives the demo committee months of believable activity: each member
// has a diligence; 四个一 duties, volunteer hours and pioneer duties are claimed with notes
// and photos and mostly approved by the branch secretary (some still pending this month,
// a few rejected); activity days, branch meetings and party groups' meetings (党小组会, of
// the group's members) are checked in at; secretaries now and then record a bonus or a
// deduction. Caps hold. Everything goes through bulkLedger, so
// the ledger verifies.
// months counts this one (up to today) and the ones before it.
func seedDemoActivity(tx *gorm.DB, root models.Org, branches []demoBranch, members []models.Member, admin models.Member, months int, now time.Time, loc *time.Location, rng *rand.Rand, store BlobStore) error {
	demoMonths := months
	rules := map[string]models.Rule{}
	var all []models.Rule
	if err := tx.Find(&all).Error; err != nil {
		return fmt.Errorf("demo activity: %w", err)
	}
	for _, r := range all {
		if r.Version > rules[r.Code].Version {
			rules[r.Code] = r
		}
	}
	today := models.Today(now, loc)
	localNow := now.In(loc)
	firstOf := func(back int) time.Time {
		return time.Date(localNow.Year(), localNow.Month()-time.Month(back), 1, 0, 0, 0, 0, loc)
	}
	dayIn := func(month time.Time) models.Date {
		last := month.AddDate(0, 1, -1).Day()
		d := models.Date(month.AddDate(0, 0, rng.IntN(last)).Format("2006-01-02"))
		if d > today {
			d = models.Date(month.AddDate(0, 0, rng.IntN(localNow.Day())).Format("2006-01-02"))
		}
		return d
	}
	ts := now.UTC().Truncate(time.Microsecond)

	// Activities: the committee's activity day (4th Thursday) and two meetings per branch a month.
	var acts []models.Activity
	actDay := map[int]models.Date{}
	actBranch := map[int]int64{}
	actGroup := map[int]int64{} // a 党小组会 is its party group's
	for back := demoMonths - 1; back >= 0; back-- {
		month := firstOf(back)
		d := month
		for d.Weekday() != time.Thursday {
			d = d.AddDate(0, 0, 1)
		}
		d = d.AddDate(0, 0, 21)
		if models.Date(d.Format("2006-01-02")) <= today {
			start := time.Date(d.Year(), d.Month(), d.Day(), 14, 0, 0, 0, loc)
			actDay[len(acts)] = models.Date(d.Format("2006-01-02"))
			acts = append(acts, models.Activity{OrgID: root.ID, Title: d.Format("1月") + "党员活动日", RuleCode: "activity.day", StartsAt: start.UTC(), EndsAt: start.Add(3 * time.Hour).UTC(),
				CheckinCode: newCheckinCode(), CreatedBy: &admin.ID, CreatedAt: ts})
		}
		for _, b := range branches {
			for k := 0; k < 2; k++ {
				md := dayIn(month)
				t, _ := time.ParseInLocation("2006-01-02", string(md), loc)
				start := t.Add(19 * time.Hour)
				actDay[len(acts)], actBranch[len(acts)] = md, b.org.ID
				title, org := []string{"支部党员大会", "党课", "支委会", "党小组会"}[rng.IntN(4)], b.org.ID
				if title == "党小组会" {
					org = b.groups[k].ID
					actGroup[len(acts)] = org
				}
				acts = append(acts, models.Activity{OrgID: org, Title: title, RuleCode: "meeting.attend",
					StartsAt: start.UTC(), EndsAt: start.Add(2 * time.Hour).UTC(), CheckinCode: newCheckinCode(), CreatedAt: ts})
			}
		}
	}
	if err := tx.CreateInBatches(acts, 500).Error; err != nil {
		return fmt.Errorf("demo activities: %w", err)
	}

	// A pioneer post per branch, held by two members for the year.
	secretaryOf := map[int64]int64{}
	for i, b := range branches {
		secretaryOf[b.org.ID] = members[i].ID
	}
	var posts []models.Post
	for _, b := range branches {
		posts = append(posts, models.Post{BranchID: b.org.ID, Name: []string{"教学先锋岗", "科研先锋岗", "服务先锋岗"}[rng.IntN(3)], Duties: "立足岗位、服务师生、作出表率", CreatedAt: ts})
	}
	if err := tx.CreateInBatches(posts, 500).Error; err != nil {
		return fmt.Errorf("demo posts: %w", err)
	}
	year := localNow.Format("2006")
	holder := map[int64]*models.PostAssignment{}
	var assignments []*models.PostAssignment
	for i, p := range posts {
		for k := 1; k <= 2; k++ {
			m := members[i+k*len(branches)] // not the secretary
			as := &models.PostAssignment{PostID: p.ID, MemberID: m.ID, StartsOn: models.Date(firstOf(demoMonths - 1).Format("2006-01-02")), EndsOn: models.Date(year + "-12-31"),
				Commitment: "亮身份、亮职责、亮承诺：带头学习，带头服务，带头攻坚", CreatedAt: ts}
			assignments = append(assignments, as)
			holder[m.ID] = as
		}
	}
	if err := tx.CreateInBatches(assignments, 500).Error; err != nil {
		return fmt.Errorf("demo assignments: %w", err)
	}

	// What each member did, month by month.
	fourOnes := []string{"four_ones.listen_masses", "four_ones.guide_activists", "four_ones.read_theory", "four_ones.volunteer"}
	events := map[int64][]demoEvent{}
	for _, m := range members {
		diligence := 0.5 + 0.48*rng.Float64()
		var evs []demoEvent
		for back := demoMonths - 1; back >= 0; back-- {
			month := firstOf(back)
			current := back == 0
			status := func() string {
				switch r := rng.Float64(); {
				case current && r < 0.25: // this month's are partly still in the queue
					return models.ClaimPending
				case r > 0.97:
					return models.ClaimRejected
				}
				return models.ClaimApproved
			}
			for _, code := range fourOnes {
				if rng.Float64() < diligence {
					evs = append(evs, demoEvent{day: dayIn(month), rule: code, qty: 10, status: status()})
				}
			}
			if rng.Float64() < diligence*0.6 {
				evs = append(evs, demoEvent{day: dayIn(month), rule: "volunteer.hours", qty: models.Points(5 * (1 + rng.IntN(16))), status: status()})
			}
			if as := holder[m.ID]; as != nil && rng.Float64() < 0.85 {
				evs = append(evs, demoEvent{day: dayIn(month), rule: "pioneer.duty", qty: 10, post: as, status: status()})
			}
			if rng.Float64() < 0.02 {
				evs = append(evs, demoEvent{day: dayIn(month), rule: "adjust.bonus", manual: models.Points(10 * (1 + rng.IntN(3)))})
			}
			if rng.Float64() < 0.01 {
				evs = append(evs, demoEvent{day: dayIn(month), rule: "adjust.deduct", manual: -10})
			}
		}
		for i, a := range acts {
			if actDay[i] < models.Date(firstOf(demoMonths-1).Format("2006-01-02")) {
				continue
			}
			if g, ok := actGroup[i]; ok && (m.GroupID == nil || *m.GroupID != g) {
				continue
			}
			if b, ok := actBranch[i]; ok && b != m.BranchID {
				continue
			}
			if !a.StartsAt.Before(now) {
				continue // not begun: nobody has checked in yet
			}
			if rng.Float64() < 0.5+0.45*diligence {
				evs = append(evs, demoEvent{day: actDay[i], rule: a.RuleCode, activity: i})
			}
		}
		sort.SliceStable(evs, func(i, j int) bool { return evs[i].day < evs[j].day })
		events[m.ID] = evs
	}

	// Claims first, so that entries can name them.
	type claimRef struct {
		member int64
		index  int
	}
	var claims []models.Claim
	var refs []claimRef
	for _, m := range members {
		for i, ev := range events[m.ID] {
			r := rules[ev.rule]
			if r.How != models.HowClaim {
				continue
			}
			decider := secretaryOf[m.BranchID]
			if decider == m.ID {
				decider = admin.ID
			}
			c := models.Claim{MemberID: m.ID, BranchID: m.BranchID, RuleCode: r.Code, RuleVersion: r.Version, Period: ev.day.Period(), OccurredOn: ev.day,
				Quantity: ev.qty, PointsRequested: models.Points((int64(ev.qty)*int64(r.Points) + 5) / 10), Status: ev.status,
				Note: demoNotes[rng.IntN(len(demoNotes))], CreatedAt: ts, UpdatedAt: ts}
			if ev.post != nil {
				c.AssignmentID = &ev.post.ID
			}
			if ev.status != models.ClaimPending {
				c.DecidedBy, c.DecidedAt = &decider, &ts
			}
			if ev.status == models.ClaimRejected {
				reason := "材料不足，请补充照片后重新提交"
				c.Reason = &reason
			}
			claims = append(claims, c)
			refs = append(refs, claimRef{m.ID, i})
		}
	}
	// Awards, in the order things happened, so the caps hold; then the claims go in.
	tally := map[ruleKey]models.Points{}
	for i := range claims {
		c := &claims[i]
		if c.Status != models.ClaimApproved {
			continue
		}
		k := ruleKey{c.MemberID, c.Period, c.RuleCode}
		award, _ := capAward(rules[c.RuleCode], c.PointsRequested, tally[k])
		tally[k] += award
		c.PointsAwarded = &award
	}
	if err := tx.CreateInBatches(claims, 500).Error; err != nil {
		return fmt.Errorf("demo claims: %w", err)
	}
	if err := attachDemoPhotos(tx, store, claims, rules, ts); err != nil {
		return err
	}
	claimAt := map[claimRef]int{}
	for i, r := range refs {
		claimAt[r] = i
	}

	// Entries, member by member in the order things happened, with caps applied.
	bl := newBulkLedger()
	type checkinRef struct {
		checkin models.Checkin
		entry   int
	}
	var checkins []checkinRef
	for _, m := range members {
		for i, ev := range events[m.ID] {
			r := rules[ev.rule]
			at, _ := time.ParseInLocation("2006-01-02", string(ev.day), loc)
			at = at.Add(time.Duration(9+rng.IntN(10)) * time.Hour)
			if at.After(now) {
				at = now // today's, recorded by now
			}
			switch r.How {
			case models.HowClaim:
				ci := claimAt[claimRef{m.ID, i}]
				c := &claims[ci]
				if c.Status != models.ClaimApproved {
					continue
				}
				if award := *c.PointsAwarded; award > 0 {
					bl.add(entryInput{MemberID: m.ID, BranchID: m.BranchID, Rule: r, OccurredOn: ev.day, Points: award, Source: models.SourceClaim,
						ClaimID: &c.ID, Reason: c.Note, ActorID: c.DecidedBy}, at)
				}
			case models.HowCheckin:
				// Inside the activity's time, as the service takes check-ins, and not after now.
				a := &acts[ev.activity]
				until := a.EndsAt
				if now.Before(until) {
					until = now
				}
				at = a.StartsAt.Add(time.Duration(rng.Int64N(int64(until.Sub(a.StartsAt)) + 1)))
				ci := models.Checkin{ActivityID: a.ID, MemberID: m.ID, CreatedAt: at.UTC().Truncate(time.Microsecond)}
				idx := -1
				if award, _ := capAward(r, r.Points, bl.ruleTotal(m.ID, ev.day.Period(), r.Code)); award > 0 {
					idx = bl.add(entryInput{MemberID: m.ID, BranchID: m.BranchID, Rule: r, OccurredOn: ev.day, Points: award, Source: models.SourceCheckin,
						Reason: a.Title, ActorID: &m.ID}, at)
				}
				checkins = append(checkins, checkinRef{ci, idx})
			case models.HowManual:
				sec := secretaryOf[m.BranchID]
				if sec == m.ID {
					sec = admin.ID
				}
				reason := "志愿服务表现突出"
				if ev.manual < 0 {
					reason = "无故缺席组织生活"
				}
				bl.add(entryInput{MemberID: m.ID, BranchID: m.BranchID, Rule: r, OccurredOn: ev.day, Points: ev.manual, Source: models.SourceManual,
					Reason: reason, ActorID: &sec}, at)
			}
		}
	}
	if err := bl.write(tx); err != nil {
		return fmt.Errorf("demo ledger: %w", err)
	}
	rows := make([]models.Checkin, len(checkins))
	for i, c := range checkins {
		rows[i] = c.checkin
		if c.entry >= 0 {
			rows[i].EntryID = &bl.entries[c.entry].ID
		}
	}
	if err := tx.CreateInBatches(rows, 500).Error; err != nil {
		return fmt.Errorf("demo check-ins: %w", err)
	}
	return nil
}

var demoNotes = []string{
	"走访社区群众，听取对学院工作的意见建议", "与入党积极分子谈心谈话，了解学习情况", "阅读《习近平新时代中国特色社会主义思想学习纲要》",
	"参加校园献血志愿服务", "参加图书馆志愿服务", "指导积极分子撰写思想汇报", "学习党的二十大报告并撰写心得", "参加社区疫情防控志愿服务",
}
