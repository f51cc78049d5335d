package app

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"

	"partyledger/models"
)

// Members keeps the roster: members, their roles and their invite codes.
type Members struct {
	db        *DB
	inviteTTL time.Duration
}

// NewMembers returns the roster use cases.
func NewMembers(db *DB, inviteTTL time.Duration) *Members {
	return &Members{db: db, inviteTTL: inviteTTL}
}

var errMemberNotFound = models.Errorf(models.ENotFound, "no such member")

// memberRow is a member with the path of their branch, for scope checks.
type memberRow struct {
	models.Member
	BranchPath string
}

// loadMember reads a member with their branch path. Returns ENotFound.
func loadMember(ctx context.Context, db *gorm.DB, id int64) (memberRow, error) {
	var m memberRow
	err := db.WithContext(ctx).Table("members").Select("members.*, orgs.path AS branch_path").
		Joins("JOIN orgs ON orgs.id = members.branch_id").Where("members.id = ?", id).Take(&m).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return m, errMemberNotFound
	}
	return m, dbError("get member", err)
}

// MemberInput is what POST /members takes.
type MemberInput struct {
	MemberNo string `json:"member_no" validate:"required,member_no"`
	Name     string `json:"name" validate:"notblank,max=64"`
	BranchID int64  `json:"branch_id" validate:"required,gt=0"`
	GroupID  *int64 `json:"group_id" validate:"omitempty,gt=0"`
}

// placeMember checks that branchID is a branch the actor administers and groupID (if
// set) one of its groups. Returns EInvalid.
func placeMember(ctx context.Context, tx *gorm.DB, a *Actor, branchID int64, groupID *int64) (models.Org, error) {
	branch, err := getOrg(ctx, tx, branchID)
	if err != nil && !isNotFound(err) {
		return branch, err
	}
	if err != nil || !a.Can(models.RoleAdmin, branch.Path) {
		return branch, models.InvalidField("branch_id", "no such branch in your scope")
	}
	if branch.Kind != models.KindBranch {
		return branch, models.InvalidField("branch_id", "must be a branch (党支部), not a "+string(branch.Kind))
	}
	if groupID != nil {
		// The group's row for update: a group moving to another branch at this moment
		// takes its members along (moveGroupMembers), and this one is either among them
		// or waits and finds the group gone from the branch.
		locked, err := lockOrgs(ctx, tx, *groupID)
		if err != nil {
			return branch, err
		}
		g, ok := locked[*groupID]
		if !ok || g.Kind != models.KindGroup || g.ParentID == nil || *g.ParentID != branch.ID {
			return branch, models.InvalidField("group_id", "must be a group (党小组) of that branch")
		}
	}
	return branch, nil
}

// Create adds a member to a branch the actor administers. Returns EInvalid, EForbidden
// or EConflict (member number taken).
func (s *Members) Create(ctx context.Context, a *Actor, in MemberInput) (models.Member, error) {
	in.Name = strings.TrimSpace(in.Name)
	if err := Validate(in); err != nil {
		return models.Member{}, err
	}
	if len(a.Scopes(models.RoleAdmin)) == 0 {
		return models.Member{}, models.Errorf(models.EForbidden, "only admins add members")
	}
	var m models.Member
	err := s.db.W.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if _, err := placeMember(ctx, tx, a, in.BranchID, in.GroupID); err != nil {
			return err
		}
		now := time.Now().UTC().Truncate(time.Microsecond)
		m = models.Member{MemberNo: in.MemberNo, Name: in.Name, BranchID: in.BranchID, GroupID: in.GroupID, Status: models.StatusActive, CreatedAt: now, UpdatedAt: now}
		if err := tx.Create(&m).Error; err != nil {
			if isDuplicate(err) {
				return models.Errorf(models.EConflict, "member number %s is taken", in.MemberNo)
			}
			return dbError("create member", err)
		}
		return writeAudit(tx, &a.ID, &m.BranchID, "member.created", "member", m.ID, nil, m)
	})
	return m, err
}

// Get reads a member: the member themself, or staff over their branch.
// Returns ENotFound (also for members outside the actor's scope).
func (s *Members) Get(ctx context.Context, a *Actor, id int64) (models.Member, error) {
	m, err := loadMember(ctx, s.db.R, id)
	if err != nil {
		return models.Member{}, err
	}
	if m.ID != a.ID && !a.CanAny(m.BranchPath, staffRoles...) {
		return models.Member{}, errMemberNotFound
	}
	return m.Member, nil
}

// MemberFilter narrows GET /members.
type MemberFilter struct {
	OrgID  *int64
	Status models.MemberStatus
	Query  string // a prefix of the name or the member number
}

// List returns the members inside the actor's staff scope, by id. Returns EForbidden,
// EInvalid or ENotFound (an org_id outside the scope).
func (s *Members) List(ctx context.Context, a *Actor, f MemberFilter, p Page) (List[models.Member], error) {
	scopes := a.Scopes(staffRoles...)
	if len(scopes) == 0 {
		return List[models.Member]{}, models.Errorf(models.EForbidden, "only staff read the roster")
	}
	q := s.db.R.WithContext(ctx).Table("members").Select("members.*").
		Joins("JOIN orgs ON orgs.id = members.branch_id").Where(scopeClause("orgs.path", scopes)).Where("members.id > ?", p.After)
	if f.OrgID != nil {
		o, err := getOrg(ctx, s.db.R, *f.OrgID)
		if err := hidden(err, err == nil && a.CanAny(o.Path, staffRoles...), errOrgNotFound); err != nil {
			return List[models.Member]{}, err
		}
		if o.Kind == models.KindGroup { // its members are in its branch, not under it
			q = q.Where("members.group_id = ?", o.ID)
		} else {
			cond, args := subtree("orgs.path", o.Path)
			q = q.Where(cond, args...)
		}
	}
	switch f.Status {
	case "":
	case models.StatusActive, models.StatusInactive:
		q = q.Where("members.status = ?", f.Status)
	default:
		return List[models.Member]{}, models.InvalidField("status", "must be active or inactive")
	}
	if f.Query = strings.TrimSpace(f.Query); f.Query != "" {
		// '!' escapes LIKE's wildcards: a backslash means different things to MySQL and SQLite.
		like := strings.NewReplacer(`!`, `!!`, `%`, `!%`, `_`, `!_`).Replace(f.Query) + "%"
		q = q.Where(`(members.name LIKE ? ESCAPE '!' OR members.member_no LIKE ? ESCAPE '!')`, like, like)
	}
	var rows []models.Member
	if err := q.Order("members.id").Limit(p.Limit + 1).Find(&rows).Error; err != nil {
		return List[models.Member]{}, dbError("list members", err)
	}
	return pageOf(rows, p.Limit, func(m models.Member) int64 { return m.ID }), nil
}

// MemberPatch is what PATCH /members/{id} may change. Nil fields stay as they are;
// ClearGroup removes the member from their group; Username "" removes staff log-in.
type MemberPatch struct {
	Name       *string              `json:"name" validate:"omitempty,notblank,max=64"`
	BranchID   *int64               `json:"branch_id" validate:"omitempty,gt=0"`
	GroupID    *int64               `json:"group_id" validate:"omitempty,gt=0"`
	ClearGroup bool                 `json:"-"`
	Status     *models.MemberStatus `json:"status" validate:"omitempty,oneof=active inactive"`
	Username   *string              `json:"username" validate:"omitempty,max=64"`
	Password   *string              `json:"password" validate:"omitempty,min=8,max=72"`
}

// Update changes a member the actor administers (and, when moving them, the new branch).
// Disabling a member ends their access at once. Returns EInvalid, ENotFound or EConflict.
func (s *Members) Update(ctx context.Context, a *Actor, id int64, p MemberPatch) (models.Member, error) {
	if err := Validate(p); err != nil {
		return models.Member{}, err
	}
	var hash string
	if p.Password != nil { // before the member's row is held: hashing takes a while
		h, err := HashPassword(*p.Password)
		if err != nil {
			return models.Member{}, err
		}
		hash = h
	}
	var after models.Member
	// The member's row first: PATCHes of one member at once run one after the other, each
	// checking scope against, and writing its audit record from, what the one before it
	// left (with a plain read, each saw the member as it was before any of them).
	err := s.db.writeTx(ctx, func(tx *gorm.DB) error {
		if err := lockMemberRow(tx, id); err != nil {
			return err
		}
		cur, err := loadMember(ctx, tx, id)
		if err := hidden(err, err == nil && a.Can(models.RoleAdmin, cur.BranchPath), errMemberNotFound); err != nil {
			return err
		}
		before := cur.Member
		after = cur.Member
		now := time.Now().UTC().Truncate(time.Microsecond)
		changes := map[string]any{"updated_at": now}
		if p.Name != nil {
			after.Name = strings.TrimSpace(*p.Name)
			changes["name"] = after.Name
		}
		if p.BranchID != nil || p.GroupID != nil || p.ClearGroup {
			if p.BranchID != nil {
				after.BranchID = *p.BranchID
			}
			switch {
			case p.ClearGroup:
				after.GroupID = nil
			case p.GroupID != nil:
				after.GroupID = p.GroupID
			case after.BranchID != before.BranchID:
				after.GroupID = nil // groups belong to one branch
			}
			if _, err := placeMember(ctx, tx, a, after.BranchID, after.GroupID); err != nil {
				return err
			}
			changes["branch_id"], changes["group_id"] = after.BranchID, after.GroupID
		}
		if p.Status != nil {
			if id == a.ID && *p.Status != models.StatusActive {
				return models.Errorf(models.EConflict, "you cannot disable your own account")
			}
			after.Status = *p.Status
			changes["status"] = after.Status
		}
		if p.Username != nil {
			u := strings.TrimSpace(*p.Username)
			if u == "" {
				after.Username, after.PasswordHash = nil, nil
				changes["username"], changes["password_hash"] = nil, nil
			} else {
				after.Username = &u
				changes["username"] = u
			}
		}
		if p.Password != nil {
			if after.Username == nil {
				return models.InvalidField("password", "set a username first")
			}
			after.PasswordHash = &hash
			changes["password_hash"] = hash
		}
		after.UpdatedAt = now
		changes["auth_rev"] = gorm.Expr("auth_rev + 1")
		if err := tx.Model(&models.Member{}).Where("id = ?", id).Updates(changes).Error; err != nil {
			if isDuplicate(err) {
				return models.InvalidField("username", "is taken")
			}
			return dbError("update member", err)
		}
		if after.Status != models.StatusActive {
			if err := endSessions(tx, []int64{id}, now); err != nil {
				return err
			}
		}
		return writeAudit(tx, &a.ID, &after.BranchID, "member.updated", "member", id, before, after)
	})
	return after, err
}

// Invite is a one-time code that binds a WeChat account to a member.
type Invite struct {
	InviteCode string    `json:"invite_code"`
	ExpiresAt  time.Time `json:"expires_at"`
}

// Member numbers are one member's whatever their letters' case (they are ASCII): MySQL's
// collation compares them so, and SQLite's unique index on them is NOCASE (migration
// 00009). memberNoKey is a number's key for Go's maps; memberNoIn is the condition
// "col IN ?" compared that way, naming SQLite's collation so that its index serves it.
func memberNoKey(no string) string { return strings.ToUpper(no) }

func (db *DB) memberNoIn(col string) string {
	if db.Driver == "mysql" {
		return col + " IN ?"
	}
	return col + " COLLATE NOCASE IN ?"
}

// inviteAlphabet leaves out 0/O and 1/I, which people misread from a screen.
const (
	inviteAlphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	inviteLen      = 10
)

func newInviteCode() string {
	b := randomBytes(inviteLen)
	for i := range b {
		b[i] = inviteAlphabet[int(b[i])%len(inviteAlphabet)] // 256 is a multiple of 32: no bias
	}
	return string(b)
}

// Invite issues a new one-time invite code for a member the actor administers or is
// secretary over; earlier unused codes of that member stop working. Returns ENotFound,
// EForbidden or EConflict (the member is disabled).
func (s *Members) Invite(ctx context.Context, a *Actor, id int64) (Invite, error) {
	if len(a.Scopes(models.RoleAdmin, models.RoleSecretary)) == 0 {
		return Invite{}, models.Errorf(models.EForbidden, "only admins and secretaries invite members")
	}
	var inv Invite
	// The member's row first: two invites of one member at once run one after the other,
	// and the second revokes the first's code (with none before them, both stayed live).
	err := s.db.writeTx(ctx, func(tx *gorm.DB) error {
		if err := lockMemberRow(tx, id); err != nil {
			return err
		}
		m, err := loadMember(ctx, tx, id)
		if err := hidden(err, err == nil && a.CanAny(m.BranchPath, models.RoleAdmin, models.RoleSecretary), errMemberNotFound); err != nil {
			return err
		}
		if m.Status != models.StatusActive {
			return models.Errorf(models.EConflict, "this member is disabled")
		}
		now := time.Now().UTC().Truncate(time.Microsecond)
		if err := tx.Model(&models.InviteCode{}).Where("member_id = ? AND used_at IS NULL AND revoked_at IS NULL", id).
			Update("revoked_at", now).Error; err != nil {
			return dbError("invite", err)
		}
		inv = Invite{InviteCode: newInviteCode(), ExpiresAt: now.Add(s.inviteTTL)}
		rec := models.InviteCode{MemberID: id, CodeHash: hashSecret(inv.InviteCode), ExpiresAt: inv.ExpiresAt, CreatedBy: a.ID, CreatedAt: now}
		if err := tx.Create(&rec).Error; err != nil {
			return dbError("invite", err)
		}
		return writeAudit(tx, &a.ID, &m.BranchID, "member.invited", "member", id, nil, map[string]any{"invite_id": rec.ID, "expires_at": inv.ExpiresAt})
	})
	return inv, err
}

// RoleInput is one role of PUT /members/{id}/roles.
type RoleInput struct {
	Role  models.Role `json:"role" validate:"required,oneof=member secretary leader admin"`
	OrgID int64       `json:"org_id" validate:"required,gt=0"`
}

// ListRoles returns the explicit roles of a member the actor may read (see Get).
// Returns ENotFound.
func (s *Members) ListRoles(ctx context.Context, a *Actor, id int64) ([]Grant, error) {
	if _, err := s.Get(ctx, a, id); err != nil {
		return nil, err
	}
	return s.roles(ctx, s.db.R, id)
}

// roles returns a member's explicit roles with their orgs, read through db.
func (s *Members) roles(ctx context.Context, db *gorm.DB, id int64) ([]Grant, error) {
	var rows []struct {
		Role    models.Role
		OrgID   int64
		OrgName string
		OrgKind models.OrgKind
	}
	err := db.WithContext(ctx).Table("member_roles").Select("member_roles.role, member_roles.org_id, orgs.name AS org_name, orgs.kind AS org_kind").
		Joins("JOIN orgs ON orgs.id = member_roles.org_id").Where("member_roles.member_id = ?", id).Order("member_roles.id").Scan(&rows).Error
	out := make([]Grant, 0, len(rows))
	for _, r := range rows {
		out = append(out, Grant{Role: r.Role, OrgID: r.OrgID, OrgName: r.OrgName, OrgKind: r.OrgKind})
	}
	return out, dbError("list roles", err)
}

// SetRoles replaces a member's roles. The actor must administer every org named in the
// new set and in the old one, and cannot change their own roles. Returns EInvalid,
// EForbidden or ENotFound.
func (s *Members) SetRoles(ctx context.Context, a *Actor, id int64, roles []RoleInput) ([]Grant, error) {
	if len(roles) > 50 {
		return nil, models.InvalidField("roles", "at most 50 roles")
	}
	for i, r := range roles {
		if err := Validate(r); err != nil {
			var e *models.Error
			if errors.As(err, &e) {
				f := map[string]string{}
				for k, v := range e.Fields {
					f["["+itoa(i)+"]."+k] = v
				}
				e.Fields = f
			}
			return nil, err
		}
	}
	if len(a.Scopes(models.RoleAdmin)) == 0 {
		return nil, models.Errorf(models.EForbidden, "only admins grant roles")
	}
	if id == a.ID {
		return nil, models.Errorf(models.EForbidden, "you cannot change your own roles; ask another admin")
	}
	var out []Grant
	// The member's row is taken first (the auth_rev bump, which this change needs
	// anyway): two role changes of one member run one after the other, and the second
	// replaces the set the first left, instead of both deleting the old set and the new
	// sets adding up. Run as the ledger's writes are, so that a deadlock runs again.
	err := s.db.writeTx(ctx, func(tx *gorm.DB) error {
		out = nil
		if err := bumpAuthRev(tx, id); err != nil {
			return err
		}
		m, err := loadMember(ctx, tx, id)
		if err := hidden(err, err == nil && a.CanAny(m.BranchPath, staffRoles...), errMemberNotFound); err != nil {
			return err
		}
		before, err := s.roles(ctx, tx, id)
		if err != nil {
			return err
		}
		for _, g := range before {
			o, err := getOrg(ctx, tx, g.OrgID)
			if err != nil {
				return err
			}
			if !a.Can(models.RoleAdmin, o.Path) {
				return models.Errorf(models.EForbidden, "this member holds a role over %s, outside your scope", o.Name)
			}
		}
		seen := map[RoleInput]bool{}
		now := time.Now().UTC().Truncate(time.Microsecond)
		var rows []models.MemberRole
		for i, r := range roles {
			if seen[r] {
				continue
			}
			seen[r] = true
			o, err := getOrg(ctx, tx, r.OrgID)
			field := "[" + itoa(i) + "].org_id"
			if err != nil && !isNotFound(err) {
				return err
			}
			if err != nil || !a.Can(models.RoleAdmin, o.Path) {
				return models.InvalidField(field, "no such org in your scope")
			}
			if !r.Role.AllowedOn(o.Kind) {
				return models.InvalidField(field, "a "+string(r.Role)+" role cannot be held over a "+string(o.Kind))
			}
			rows = append(rows, models.MemberRole{MemberID: id, Role: r.Role, OrgID: r.OrgID, CreatedAt: now})
		}
		if err := tx.Where("member_id = ?", id).Delete(&models.MemberRole{}).Error; err != nil {
			return dbError("set roles", err)
		}
		if len(rows) > 0 {
			if err := tx.Create(&rows).Error; err != nil {
				return dbError("set roles", err)
			}
		}
		if out, err = s.roles(ctx, tx, id); err != nil {
			return err
		}
		return writeAudit(tx, &a.ID, &m.BranchID, "member.roles_set", "member", id, before, out)
	})
	return out, err
}

// endSessions revokes the refresh tokens of members who were just disabled, whichever way:
// their sessions end now, not when their tokens expire, and stay ended if they are
// enabled again.
func endSessions(tx *gorm.DB, ids []int64, now time.Time) error {
	for batch := range slices.Chunk(ids, 500) {
		if err := tx.Model(&models.RefreshToken{}).Where("member_id IN ? AND revoked_at IS NULL", batch).Update("revoked_at", now).Error; err != nil {
			return dbError("end sessions", err)
		}
	}
	return nil
}
