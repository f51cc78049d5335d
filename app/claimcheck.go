package app

import (
	"slices"
	"strings"

	"gorm.io/gorm"

	"partyledger/models"
)

// claimCheck is what one submitted claim is checked against, read in the claim writer's
// transaction together with the other claims of its batch (readChecks): the rule's
// newest version, who owns its photos, whether its month is closed for the member's
// branch or an org above it, and its pioneer-post assignment.
type claimCheck struct {
	member     int64
	ruleCode   string
	photos     []int64       // distinct
	period     models.Period // "" when occurred_on is not a date
	orgs       []int64       // the member's branch and the orgs above it
	assignment *int64
	actor      *Actor // the caller's copy, checked current (nil: not checked)

	actorChanged bool                   // actor is no longer current (ErrActorChanged)
	rule         models.Rule            // the newest version; Code is "" when there is none
	owned        int                    // how many of photos are the member's
	closed       bool                   // the month is closed for one of orgs
	assigned     *models.PostAssignment // the assignment, if it is the member's, to a post of their branch
}

// readChecks answers checks in two statements, however many they are: the rules, then
// the photos' owners, the closed months, the assignments and the callers' status and
// auth_rev in one UNION ALL of index lookups.
func readChecks(tx *gorm.DB, checks []*claimCheck) error {
	var codes []string
	var photos, orgs, assignments, callers []int64
	var periods []models.Period
	for _, chk := range checks {
		codes = append(codes, chk.ruleCode)
		if chk.actor != nil {
			callers = append(callers, chk.actor.ID)
		}
		photos = append(photos, chk.photos...)
		if chk.period != "" {
			periods = append(periods, chk.period)
			orgs = append(orgs, chk.orgs...)
		}
		if chk.assignment != nil {
			assignments = append(assignments, *chk.assignment)
		}
	}
	var rules []models.Rule
	if err := tx.Where("code IN ?", distinct(codes)).Order("code, version DESC").Find(&rules).Error; err != nil {
		return err
	}
	newest := make(map[string]models.Rule, len(rules))
	for _, r := range rules {
		if _, ok := newest[r.Code]; !ok {
			newest[r.Code] = r
		}
	}

	var parts []string
	var args []any
	if len(photos) > 0 {
		parts = append(parts, "SELECT 'u' AS k, id AS a, owner_id AS b, '' AS s, '' AS e FROM uploads WHERE id IN ?")
		args = append(args, distinct(photos))
	}
	if len(periods) > 0 {
		parts = append(parts, "SELECT 'c', org_id, 0, period, '' FROM closed_periods WHERE reopened_at IS NULL AND period IN ? AND org_id IN ?")
		args = append(args, distinct(periods), distinct(orgs))
	}
	if len(assignments) > 0 {
		// Only an assignment to a post of the member's branch as it is now: one who has
		// moved to another branch no longer holds the old branch's post.
		parts = append(parts, "SELECT 'a', pa.id, pa.member_id, pa.starts_on, pa.ends_on FROM post_assignments pa "+
			"JOIN posts p ON p.id = pa.post_id JOIN members m ON m.id = pa.member_id WHERE pa.id IN ? AND p.branch_id = m.branch_id")
		args = append(args, distinct(assignments))
	}
	if len(callers) > 0 {
		parts = append(parts, "SELECT 'v', id, auth_rev, status, '' FROM members WHERE id IN ?")
		args = append(args, distinct(callers))
	}
	owner := map[int64]int64{}
	callerNow := map[int64]revRow{}
	closed := map[models.Period][]int64{}
	assigned := map[int64]models.PostAssignment{}
	if len(parts) > 0 {
		rows, err := tx.Raw(strings.Join(parts, " UNION ALL "), args...).Rows()
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var k, s, e string
			var a, b int64
			if err := rows.Scan(&k, &a, &b, &s, &e); err != nil {
				return err
			}
			switch k {
			case "u":
				owner[a] = b
			case "c":
				closed[models.Period(s)] = append(closed[models.Period(s)], a)
			case "a":
				assigned[a] = models.PostAssignment{ID: a, MemberID: b, StartsOn: models.Date(s), EndsOn: models.Date(e)}
			case "v":
				callerNow[a] = revRow{status: models.MemberStatus(s), rev: b}
			}
		}
		if err := rows.Err(); err != nil {
			return err
		}
	}
	for _, chk := range checks {
		chk.actorChanged = false
		if chk.actor != nil {
			r, ok := callerNow[chk.actor.ID]
			chk.actorChanged = !ok || !chk.actor.currentAt(r.status, r.rev)
		}
		chk.rule = newest[chk.ruleCode]
		chk.owned = 0
		for _, id := range chk.photos {
			if o, ok := owner[id]; ok && o == chk.member {
				chk.owned++
			}
		}
		chk.closed = chk.period != "" && slices.ContainsFunc(closed[chk.period], func(org int64) bool { return slices.Contains(chk.orgs, org) })
		chk.assigned = nil
		if chk.assignment != nil {
			if as, ok := assigned[*chk.assignment]; ok && as.MemberID == chk.member {
				chk.assigned = &as
			}
		}
	}
	return nil
}
