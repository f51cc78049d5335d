package app

import (
	"context"
	"errors"
	"strings"
	"time"
	"unicode/utf8"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"partyledger/models"
)

// Orgs keeps the organisation tree.
type Orgs struct{ db *DB }

// NewOrgs returns the org tree use cases.
func NewOrgs(db *DB) *Orgs { return &Orgs{db: db} }

// staffRoles may read the org tree and the roster inside their scope.
var staffRoles = []models.Role{models.RoleAdmin, models.RoleLeader, models.RoleSecretary}

var errOrgNotFound = models.Errorf(models.ENotFound, "no such org")

// get reads an org by id through tx (or the reader). Returns ENotFound.
func getOrg(ctx context.Context, db *gorm.DB, id int64) (models.Org, error) {
	var o models.Org
	err := db.WithContext(ctx).Take(&o, id).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return o, errOrgNotFound
	}
	return o, dbError("get org", err)
}

// lockOrgs reads orgs for update, in the order of their ids (see forUpdate): the org
// tree's edits run one after another where they meet, and each reads the tree as the
// one before it left it. Missing ids are left out of the map.
func lockOrgs(ctx context.Context, tx *gorm.DB, ids ...int64) (map[int64]models.Org, error) {
	var rows []models.Org
	if err := forUpdate(tx.WithContext(ctx)).Where("id IN ?", ids).Order("id").Find(&rows).Error; err != nil {
		return nil, dbError("lock org", err)
	}
	out := make(map[int64]models.Org, len(rows))
	for _, o := range rows {
		out[o.ID] = o
	}
	return out, nil
}

func checkOrgName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" || utf8.RuneCountInString(name) > 100 {
		return "", models.InvalidField("name", "is required, at most 100 characters")
	}
	return name, nil
}

// OrgInput is what POST /orgs takes.
type OrgInput struct {
	ParentID *int64         `json:"parent_id"`
	Kind     models.OrgKind `json:"kind"`
	Name     string         `json:"name"`
}

// Create adds an org under a parent the actor administers. Returns EInvalid, EForbidden,
// ENotFound (parent unknown or outside the actor's scope) or EConflict (name taken
// among its siblings).
func (s *Orgs) Create(ctx context.Context, a *Actor, in OrgInput) (models.Org, error) {
	fields := map[string]string{}
	if !in.Kind.Valid() {
		fields["kind"] = "must be committee, general_branch, branch or group"
	}
	name, err := checkOrgName(in.Name)
	if err != nil {
		fields["name"] = "is required, at most 100 characters"
	}
	if in.ParentID == nil || *in.ParentID <= 0 {
		fields["parent_id"] = "is required: the root committee exists already"
	}
	if len(fields) > 0 {
		return models.Org{}, models.Invalid(fields)
	}
	if len(a.Scopes(models.RoleAdmin)) == 0 {
		return models.Org{}, models.Errorf(models.EForbidden, "only admins change the org tree")
	}
	var org models.Org
	// The parent is read locked: a move of it (or above it) in flight finishes first, and
	// the new org's path is built on the parent's path as the move left it. Run as the
	// ledger's writes are, so that a transaction aborted as a deadlock runs again.
	err = s.db.writeTx(ctx, func(tx *gorm.DB) error {
		locked, err := lockOrgs(ctx, tx, *in.ParentID)
		if err != nil {
			return err
		}
		parent, ok := locked[*in.ParentID]
		if err := hidden(nil, ok && a.Can(models.RoleAdmin, parent.Path), errOrgNotFound); err != nil {
			return err
		}
		if !in.Kind.CanBeChildOf(parent.Kind) {
			return models.InvalidField("kind", "a "+string(in.Kind)+" cannot sit under a "+string(parent.Kind))
		}
		now := time.Now().UTC().Truncate(time.Microsecond)
		org = models.Org{ParentID: &parent.ID, Kind: in.Kind, Name: name, Depth: parent.Depth + 1, CreatedAt: now, UpdatedAt: now}
		if err := tx.Create(&org).Error; err != nil {
			if isDuplicate(err) {
				return models.InvalidField("name", "another org under this parent has that name")
			}
			return dbError("create org", err)
		}
		org.Path = models.ChildPath(parent.Path, org.ID)
		if len(org.Path) > maxOrgPath {
			return errTooDeep()
		}
		if err := tx.Model(&org).Update("path", org.Path).Error; err != nil {
			return dbError("create org", err)
		}
		return writeAudit(tx, &a.ID, &org.ID, "org.created", "org", org.ID, nil, org)
	})
	return org, err
}

// Get reads an org inside the actor's staff scope. Returns EForbidden or ENotFound.
func (s *Orgs) Get(ctx context.Context, a *Actor, id int64) (models.Org, error) {
	if len(a.Scopes(staffRoles...)) == 0 {
		return models.Org{}, models.Errorf(models.EForbidden, "only staff read the org tree")
	}
	o, err := getOrg(ctx, s.db.R, id)
	if err != nil {
		return o, err
	}
	if !a.CanAny(o.Path, staffRoles...) {
		return models.Org{}, errOrgNotFound
	}
	return o, nil
}

// OrgFilter narrows GET /orgs.
type OrgFilter struct {
	ParentID *int64
	Kind     models.OrgKind
}

// List returns the orgs inside the actor's staff scope, by id. Returns EForbidden or EInvalid.
func (s *Orgs) List(ctx context.Context, a *Actor, f OrgFilter, p Page) (List[models.Org], error) {
	scopes := a.Scopes(staffRoles...)
	if len(scopes) == 0 {
		return List[models.Org]{}, models.Errorf(models.EForbidden, "only staff read the org tree")
	}
	if f.Kind != "" && !f.Kind.Valid() {
		return List[models.Org]{}, models.InvalidField("kind", "must be committee, general_branch, branch or group")
	}
	q := s.db.R.WithContext(ctx).Model(&models.Org{}).Where(scopeClause("path", scopes)).Where("id > ?", p.After)
	if f.ParentID != nil {
		q = q.Where("parent_id = ?", *f.ParentID)
	}
	if f.Kind != "" {
		q = q.Where("kind = ?", f.Kind)
	}
	var rows []models.Org
	if err := q.Order("id").Limit(p.Limit + 1).Find(&rows).Error; err != nil {
		return List[models.Org]{}, dbError("list orgs", err)
	}
	return pageOf(rows, p.Limit, func(o models.Org) int64 { return o.ID }), nil
}

// scopeClause is "(col in subtree 1 OR col in subtree 2 …)" for the given subtree paths
// (see subtree).
func scopeClause(col string, paths []string) clause.Expr {
	var sb strings.Builder
	args := make([]any, 0, 2*len(paths))
	sb.WriteString("(")
	for i, p := range paths {
		if i > 0 {
			sb.WriteString(" OR ")
		}
		cond, a := subtree(col, p)
		sb.WriteString(cond)
		args = append(args, a...)
	}
	sb.WriteString(")")
	return gorm.Expr(sb.String(), args...)
}

// subtree is the condition that the path in col lies in the subtree at path: a range,
// which both databases answer from the path index (SQLite cannot use an index for LIKE,
// which is case-insensitive there). Paths hold digits and slashes and end in a slash, and
// '/' sorts just before '0', so the subtree of "/1/2/" is ["/1/2/", "/1/20").
func subtree(col, path string) (string, []any) {
	return "(" + col + " >= ? AND " + col + " < ?)", []any{path, path[:len(path)-1] + "0"}
}

// OrgPatch is what PATCH /orgs/{id} may change.
type OrgPatch struct {
	Name     *string `json:"name" validate:"omitempty,max=100"`
	ParentID *int64  `json:"parent_id" validate:"omitempty,gt=0"`
}

// Update renames an org or moves it (with its subtree) under another parent; the actor
// must administer the org and, for a move, the new parent. Returns EInvalid, EForbidden,
// ENotFound or EConflict.
func (s *Orgs) Update(ctx context.Context, a *Actor, id int64, p OrgPatch) (models.Org, error) {
	if err := Validate(p); err != nil {
		return models.Org{}, err
	}
	if len(a.Scopes(models.RoleAdmin)) == 0 {
		return models.Org{}, models.Errorf(models.EForbidden, "only admins change the org tree")
	}
	var org models.Org
	// Run as the ledger's writes are, so that a transaction the database aborts as a
	// deadlock runs again.
	err := s.db.writeTx(ctx, func(tx *gorm.DB) error {
		before, err := getOrg(ctx, tx, id)
		if err := hidden(err, err == nil && a.Can(models.RoleAdmin, before.Path), errOrgNotFound); err != nil {
			return err
		}
		org = before
		// Names and paths of this subtree show in /me and decide scopes: members who
		// depend on it must be read again. Bumped first: an entry holds its member's row
		// (the foreign keys' shared lock) before its branch's, so the members' rows are
		// taken before the orgs' here too, or the two would deadlock.
		if err := bumpAuthRevUnder(tx, org.Path); err != nil {
			return err
		}
		// Then the org and its new parent, locked (see lockOrgs): two moves that meet run
		// one after the other, each from where the other left the tree, so two committees
		// moved under each other at once cannot make a cycle.
		ids := []int64{org.ID}
		if p.ParentID != nil {
			ids = append(ids, *p.ParentID)
		}
		locked, err := lockOrgs(ctx, tx, ids...)
		if err != nil {
			return err
		}
		cur, ok := locked[org.ID]
		if !ok || !a.Can(models.RoleAdmin, cur.Path) {
			return errOrgNotFound
		}
		if cur.Path != org.Path {
			// Moved meanwhile, itself or with an org above it: its members are under
			// the path it has now.
			if err := bumpAuthRevUnder(tx, cur.Path); err != nil {
				return err
			}
		}
		before, org = cur, cur
		now := time.Now().UTC().Truncate(time.Microsecond)
		changes := map[string]any{"updated_at": now}
		if p.Name != nil {
			if org.Name, err = checkOrgName(*p.Name); err != nil {
				return err
			}
			changes["name"] = org.Name
		}
		if p.ParentID != nil && (org.ParentID == nil || *org.ParentID != *p.ParentID) {
			if org.ParentID == nil {
				return models.InvalidField("parent_id", "the root committee cannot move")
			}
			parent, ok := locked[*p.ParentID]
			if !ok || !a.Can(models.RoleAdmin, parent.Path) {
				return models.InvalidField("parent_id", "no such org in your scope")
			}
			if models.PathContains(org.Path, parent.Path) {
				return models.InvalidField("parent_id", "an org cannot move under itself or its own subtree")
			}
			if !org.Kind.CanBeChildOf(parent.Kind) {
				return models.InvalidField("parent_id", "a "+string(org.Kind)+" cannot sit under a "+string(parent.Kind))
			}
			if err := s.movePaths(tx, org, parent); err != nil {
				return err
			}
			if org.Kind == models.KindGroup {
				if err := moveGroupMembers(tx, a, org.ID, parent.ID, now); err != nil {
					return err
				}
			}
			org.ParentID, org.Path, org.Depth = &parent.ID, models.ChildPath(parent.Path, org.ID), parent.Depth+1
			changes["parent_id"] = parent.ID
		}
		org.UpdatedAt = now
		if err := tx.Model(&models.Org{}).Where("id = ?", org.ID).Updates(changes).Error; err != nil {
			if isDuplicate(err) {
				return models.InvalidField("name", "another org under this parent has that name")
			}
			return dbError("update org", err)
		}
		return writeAudit(tx, &a.ID, &org.ID, "org.updated", "org", org.ID, before, org)
	})
	return org, err
}

// maxOrgPath is the width of orgs.path. Committees nest without a bound of their own, so
// an org whose path of ids would not fit is refused (MySQL would refuse the row; SQLite
// would store it).
const maxOrgPath = 255

func errTooDeep() error {
	return models.InvalidField("parent_id", "the org tree cannot go deeper here: an org's path of ids from the root has at most 255 characters")
}

// moveGroupMembers moves the members of a group that moves to another branch along with
// it: a group's members are its branch's (before, they stayed in the old branch with a
// group of the new one). Each member's move is audited as an update would be, and their
// auth_rev is bumped: their branch, and so their secretary, changed. The group's row is
// locked (lockOrgs), and placeMember locks a group's row before it puts a member in it,
// so no member joins the group in the old branch while it moves.
func moveGroupMembers(tx *gorm.DB, a *Actor, groupID, branchID int64, now time.Time) error {
	var members []models.Member
	if err := forUpdate(tx).Where("group_id = ?", groupID).Order("id").Find(&members).Error; err != nil {
		return dbError("move group", err)
	}
	if len(members) == 0 {
		return nil
	}
	if err := tx.Model(&models.Member{}).Where("group_id = ?", groupID).
		Updates(map[string]any{"branch_id": branchID, "updated_at": now, "auth_rev": gorm.Expr("auth_rev + 1")}).Error; err != nil {
		return dbError("move group", err)
	}
	audits := make([]models.AuditRecord, len(members))
	for i, before := range members {
		after := before
		after.BranchID, after.UpdatedAt = branchID, now
		rec, err := auditRecord(&a.ID, &branchID, "member.updated", "member", before.ID, before, after)
		if err != nil {
			return err
		}
		audits[i] = rec
	}
	return dbError("move group", tx.CreateInBatches(audits, 500).Error)
}

// movePaths rewrites the paths and depths of org's subtree for a move under parent.
func (s *Orgs) movePaths(tx *gorm.DB, org, parent models.Org) error {
	var sub []models.Org
	cond, args := subtree("path", org.Path)
	// Locked as read: an org being created under one of them is either in this list (its
	// creation done first) or waits and is built on the new path.
	if err := forUpdate(tx).Where(cond, args...).Find(&sub).Error; err != nil {
		return dbError("move org", err)
	}
	newPrefix := models.ChildPath(parent.Path, org.ID)
	for _, o := range sub {
		if len(newPrefix)+len(o.Path)-len(org.Path) > maxOrgPath {
			return errTooDeep()
		}
	}
	shift := parent.Depth + 1 - org.Depth
	for _, o := range sub {
		if err := tx.Model(&models.Org{}).Where("id = ?", o.ID).
			Updates(map[string]any{"path": newPrefix + strings.TrimPrefix(o.Path, org.Path), "depth": o.Depth + shift}).Error; err != nil {
			return dbError("move org", err)
		}
	}
	// The branches of the subtree with no committee between them and the moved org now
	// count under the nearest committee above the new parent. Their org rows are locked
	// now (updated above), so no entry of theirs is in flight while their rows move.
	committee := map[int64]bool{}
	for _, o := range sub {
		committee[o.ID] = o.Kind == models.KindCommittee
	}
	var branches []int64
	for _, o := range sub {
		if o.Kind != models.KindBranch {
			continue
		}
		inner := false
		for _, id := range ancestorIDs(o.Path) {
			inner = inner || committee[id]
		}
		if !inner {
			branches = append(branches, o.ID)
		}
	}
	if len(branches) == 0 {
		return nil
	}
	above := ancestorIDs(org.Path)
	from, err := nearestCommitteeOf(tx, above[:len(above)-1])
	if err != nil {
		return err
	}
	to, err := nearestCommitteeOf(tx, ancestorIDs(parent.Path))
	if err != nil {
		return err
	}
	return moveCommitteePoints(tx, branches, from, to)
}

// nearestCommitteeOf is the deepest committee among the orgs ids (0: none).
func nearestCommitteeOf(tx *gorm.DB, ids []int64) (int64, error) {
	var c []int64
	if len(ids) == 0 {
		return 0, nil
	}
	if err := tx.Model(&models.Org{}).Where("id IN ? AND kind = ?", ids, models.KindCommittee).Order("depth DESC").Limit(1).Pluck("id", &c).Error; err != nil {
		return 0, dbError("move org", err)
	}
	if len(c) == 0 {
		return 0, nil
	}
	return c[0], nil
}
